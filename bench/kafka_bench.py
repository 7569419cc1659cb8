"""Kafka throughput: the pipelines next to a bare confluent-kafka loop, same broker, same run.

    python bench/kafka_bench.py [--messages 200000] [--parallelism 1] [--repeat 5]

With ``HUB_TEST_KAFKA=host:port`` it uses that broker (e.g. docker-compose's Apache Kafka),
else a throwaway Apache Kafka broker (``tests/servers/kafka.py``: KRaft, one node, its log on
the local disk) with the JIT's every tier and a 1 GB heap (:data:`JVM`; the tests' broker
trades throughput for a fast start).  Measured, messages/s:

* produce: ``datagen -> kafka`` (JSON values of about 200 bytes, checkpoints every second)
  with ``delivery = "exactly-once"`` and ``"at-least-once"``, then a bare ``Producer.produce``
  loop over the very records the pipeline wrote (key, value, timestamp);
* consume: a bare ``Consumer.consume(num_messages=...)`` loop (no decoding), then
  ``kafka -> blackhole`` (decoding the JSON into change batches with the json format's fast
  path; the table here has a DECIMAL column, so pyarrow.json reads it, decimals as their JSON
  strings cast exactly: polars would read a decimal written as a JSON number through a
  double), then the same topic with ``amount`` declared STRING (no DECIMAL column: polars
  reads when installed), and the readers alone on the consumed values (decode only); for
  information, the bare loop taking each record's ``value()`` (the plain loop touches only
  ``error()``), and the bare loop with a ``json.loads`` of each value, as a hand-written loop
  that decodes would do (their ratios are to the plain loop too).

Fair by construction: the bare producer has the sink's own client configuration (acks=all,
idempotence, linger, partitioner) and connects the way the sink's writer does, the bare
consumer has the source's (read_committed...); each bare figure runs from creating the client
to the last record delivered (``flush``) or received (and ``close``), as a pipeline's run does.
Pipelines run on the local executor in this process (no process start in the figures), and
their figures include the pipeline's start and its final checkpoint.  Each case runs
``--repeat`` times, every round all cases in turn.  The table shows each case's best round
(the one least disturbed by the machine's other load, as ``timeit`` reports) and its ratio to
the best bare loop, the median of the same-round ratios (each round's pipeline against that
round's bare loop: steadier on a machine whose load changes between rounds), the CPU time of
this process per message (least of the rounds: the client's, Arrow's and the executor's
threads, not the broker's) with the bare loop's as a share of it (the throughput ratio a
machine with every core busy would give), the throwaway broker's CPU time per message, the
cores the case kept busy (this process and the broker, in its best round: below the machine's
count, a case waits on something other than CPU), then the same-round ratios round by round.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from runtime.checkpoint.storage import CheckpointStorage  # noqa: E402
from runtime.executor.job import Job  # noqa: E402
from runtime.executor.local import LocalExecutor  # noqa: E402
from sinks.blackhole.config import BlackholeSinkConfig  # noqa: E402
from sinks.blackhole.sink import BlackholeSink  # noqa: E402
from sinks.kafka.config import KafkaSinkConfig  # noqa: E402
from sinks.kafka.sink import KafkaSink  # noqa: E402
from sinks.kafka.transactions import connect  # noqa: E402
from sources.datagen.config import DatagenConfig  # noqa: E402
from sources.datagen.source import DatagenSource  # noqa: E402
from sources.kafka.config import KafkaSourceConfig  # noqa: E402
from sources.kafka.source import KafkaSource  # noqa: E402
import formats.message.json as json_format  # noqa: E402
from tests.servers import kafka as servers  # noqa: E402

#: The throwaway broker's JVM for figures: the tests' small heap and serial collector (two
#: cores, shared with the hub in the same run), but the optimising compiler too.
JVM = ["-Xms1g", "-Xmx1g", "-XX:+UseSerialGC", "-XX:-UsePerfData", "-Djava.awt.headless=true",
       "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn"]

COLUMNS = {"id": "BIGINT", "customer": "STRING", "status": "STRING", "note": "STRING",
           "amount": "DECIMAL(12,2)", "qty": "INT", "created": "TIMESTAMP(3)"}


def run(source, sink, work: str, parallelism: int) -> float:
    shutil.rmtree(work, ignore_errors=True)
    job = Job("bench", source, sink, CheckpointStorage(work), parallelism, 1.0)
    t0 = time.perf_counter()
    LocalExecutor(job).run()
    return time.perf_counter() - t0


def bare_produce(conf: dict, topic: str, records: list) -> float:
    """The fastest plain loop: positional arguments, retry on a full queue, flush."""
    from confluent_kafka import Producer

    t0 = time.perf_counter()
    p = Producer(conf)
    connect(p, conf["bootstrap.servers"])
    produce, poll = p.produce, p.poll
    for k, v, ts in records:
        try:
            produce(topic, v, k, -1, None, None, ts)
        except BufferError:
            while True:
                poll(0.05)
                try:
                    produce(topic, v, k, -1, None, None, ts)
                    break
                except BufferError:
                    continue
    left = p.flush(60)
    elapsed = time.perf_counter() - t0
    assert left == 0, f"{left} records not delivered"
    return elapsed


def bare_consume(conf: dict, topic: str, n: int, loads: bool = False, values: bool = False
                 ) -> float:
    """The plain loop: ``consume(10_000)`` (the source's ``max-batch-messages``) and each
    record's ``error()``, no field taken out.  With ``values``, each record's ``value()``
    too (the least a loop that does something with the records does); with ``loads``, what a
    hand-written loop that decodes does as well: ``json.loads`` of each value (both extra
    information: the main ratio is against the plain loop)."""
    from confluent_kafka import Consumer, TopicPartition

    t0 = time.perf_counter()
    c = Consumer(conf)
    parts = c.list_topics(topic, timeout=10).topics[topic].partitions
    c.assign([TopicPartition(topic, p, 0) for p in parts])
    got = 0
    while got < n:
        # a short wait: a long one would idle at the end, where fewer than 10,000 are left
        if loads:
            got += len([json.loads(m.value()) for m in c.consume(10_000, 0.05)
                        if m.error() is None])
        elif values:
            got += len([m.value() for m in c.consume(10_000, 0.05) if m.error() is None])
        else:
            got += sum(1 for m in c.consume(10_000, 0.05) if m.error() is None)
    c.close()
    return time.perf_counter() - t0


#: the throwaway broker's process (None: a broker of HUB_TEST_KAFKA, not measured)
BROKER: dict[str, object] = {"process": None}


def broker_cpu() -> float:
    """CPU seconds the throwaway broker's JVM has used so far (0 without one)."""
    proc = BROKER["process"]
    if proc is None:
        return 0.0
    times = proc.cpu_times()  # type: ignore[attr-defined]
    return times.user + times.system


def one_round(server, n: int, p: int, work: str, records: list | None) -> tuple[dict, list]:
    datagen = {"columns": COLUMNS, "primary-key": ["id"], "rows": n, "batch-size": 8192,
               "splits": p, "event-time-start": "2026-01-01T00:00:00Z"}
    sink_opts = {"bootstrap-servers": server.bootstrap, "format": "json"}
    rates: dict[str, float] = {}
    topics = {}

    def measure(case: str, timed) -> None:
        """``case``'s rate from the seconds ``timed()`` returns, and the CPU seconds of this
        process meanwhile (the client's, Arrow's and the executor's threads too, not the
        broker's) as ``case + " cpu"``, the broker's as ``case + " broker"``."""
        c0, b0 = time.process_time(), broker_cpu()
        rates[case] = n / timed()
        rates[case + " cpu"] = time.process_time() - c0
        rates[case + " broker"] = broker_cpu() - b0

    for delivery in ("exactly-once", "at-least-once"):
        topic = topics[delivery] = server.create_topic(partitions=3)
        sink = KafkaSink(KafkaSinkConfig.model_validate(
            {**sink_opts, "topic": topic, "delivery": delivery, "transactional-id-prefix": topic}))
        measure(f"datagen -> kafka ({delivery})", lambda: run(
            DatagenSource(DatagenConfig.model_validate(datagen)), sink, f"{work}/{delivery}", p))
    if records is None:
        sample = server.consume_all(topics["at-least-once"], read_committed=False, idle_s=1.0)
        records = [(m.key(), m.value(), m.timestamp()[1]) for m in sample]
        assert len(records) == n, f"{len(records)} records of {n}"
    producer_conf = KafkaSinkConfig.model_validate(
        {**sink_opts, "topic": "-", "delivery": "at-least-once"}).producer_config()
    bare_topic = server.create_topic(partitions=3)
    measure("bare producer loop", lambda: bare_produce(producer_conf, bare_topic, records))
    src = KafkaSourceConfig.model_validate(
        {"bootstrap-servers": server.bootstrap, "topics": [topics["at-least-once"]],
         "bounded": "latest-offset", "format": "json",
         "format-options": {"columns": COLUMNS, "primary-key": ["id"]}})
    measure("bare consumer loop", lambda: bare_consume(
        {**src.client_config(), "group.id": f"bench-{time.time()}"}, topics["at-least-once"], n))
    measure("kafka -> blackhole (json decode)", lambda: run(
        KafkaSource(src), BlackholeSink(BlackholeSinkConfig()), f"{work}/consume", p))
    # the same topic without a DECIMAL column: polars' reader when it is installed
    no_decimal = KafkaSourceConfig.model_validate(
        {**src.model_dump(by_alias=True), "format-options": {
            "columns": {**COLUMNS, "amount": "STRING"}, "primary-key": ["id"]}})
    measure("kafka -> blackhole (STRING amount)", lambda: run(
        KafkaSource(no_decimal), BlackholeSink(BlackholeSinkConfig()), f"{work}/consume2", p))
    measure("bare consumer loop + value()", lambda: bare_consume(
        {**src.client_config(), "group.id": f"bench-{time.time()}"}, topics["at-least-once"], n,
        values=True))
    measure("bare consumer loop + json.loads", lambda: bare_consume(
        {**src.client_config(), "group.id": f"bench-{time.time()}"}, topics["at-least-once"], n,
        loads=True))
    return rates, records


ORDER = ["bare producer loop", "datagen -> kafka (exactly-once)",
         "datagen -> kafka (at-least-once)", "bare consumer loop",
         "kafka -> blackhole (json decode)", "kafka -> blackhole (STRING amount)",
         "bare consumer loop + value()", "bare consumer loop + json.loads"]


def decode_only(records: list, repeat: int) -> None:
    """The json format's columnar readers on the consumed values, no broker: the fast path's
    reader (polars when installed), pyarrow.json, and arro3-io's arrow-json reader when it
    is installed (measured for the choice, not used by the hub: it reads from a Python file
    object and needs the GIL while it parses, so beside the fetch thread it was more than 10x
    slower here; and it truncates 1.5 in an integer field to 1); best of ``repeat``."""
    import io

    import pyarrow as pa

    values = [v for _, v, _ in records]
    fields = [pa.field(k, {"BIGINT": pa.int64(), "INT": pa.int32()}.get(t, pa.string()))
              for k, t in COLUMNS.items()] + [pa.field("op", pa.string()),
                                              pa.field("ts_ms", pa.int64())]
    cases = {"pyarrow.json": lambda: _with_polars(None, fields, values)}
    if json_format._polars() is not None:
        cases["polars"] = lambda: _with_polars(json_format._polars(), fields, values)
    try:
        import arro3.io as a3

        schema = pa.schema(fields)
        cases["arro3-io"] = lambda: pa.table(pa.RecordBatchReader.from_stream(a3.read_json(
            io.BytesIO(b"\n".join(values)), schema, batch_size=len(values))))
    except ImportError:
        pass
    print(f"\ndecode only ({len(values):,} values, joined and read into columns), best of "
          f"{repeat}:")
    for name, fn in cases.items():
        best = min(_timed(fn) for _ in range(repeat))
        print(f"  {name:<14}{len(values) / best:>14,.0f} values/s")


def _with_polars(pl, fields, values):
    saved = dict(json_format._POLARS)
    json_format._POLARS["pl"] = pl
    try:
        return json_format.read_columns(b"\n".join(values), fields)
    finally:
        json_format._POLARS.clear()
        json_format._POLARS.update(saved)


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def bare_of(case: str) -> str:
    return "bare consumer loop" if "consum" in case or "blackhole" in case \
        else "bare producer loop"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=200_000)
    ap.add_argument("--parallelism", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    n, p = args.messages, args.parallelism
    server = servers.from_env()
    broker = None
    if server is None:
        broker = servers.ThrowawayKafka(jvm=JVM)
        server = broker.start()
        import psutil  # noqa: PLC0415 - the test extra

        BROKER["process"] = psutil.Process(broker.proc.pid)
    work = tempfile.mkdtemp(prefix="kafka-bench-")
    rounds = []
    records = None
    try:
        for _ in range(args.repeat):
            rates, records = one_round(server, n, p, work, records)
            rounds.append(rates)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if broker is not None:
            broker.stop()
    size = sum(len(v) for _, v, _ in records) / max(len(records), 1)  # type: ignore[union-attr]
    where = "HUB_TEST_KAFKA " + server.bootstrap if os.environ.get("HUB_TEST_KAFKA") \
        else "throwaway Apache Kafka 4.1.1"
    print(f"\nbroker: {where}; {n:,} messages, value {size:.0f} bytes avg, parallelism {p}, "
          f"best of {args.repeat} rounds")
    print(f"{'case':<36}{'messages/s':>14}{'vs bare':>10}{'median':>9}{'CPU us/msg':>12}"
          f"{'vs bare':>9}{'broker us':>11}{'cores':>7}   {'round by round':<}")
    for case in ORDER:
        best = max(r[case] for r in rounds)
        ratios = [r[case] / r[bare_of(case)] for r in rounds]
        cpu = min(r[case + " cpu"] for r in rounds)
        bare_cpu = min(r[bare_of(case) + " cpu"] for r in rounds)
        top = max(rounds, key=lambda r: r[case])
        cores = (top[case + " cpu"] + top[case + " broker"]) * top[case] / n
        print(f"{case:<36}{best:>14,.0f}{best / max(r[bare_of(case)] for r in rounds):>10.0%}"
              f"{statistics.median(ratios):>9.0%}{cpu / n * 1e6:>12.2f}{bare_cpu / cpu:>9.0%}"
              f"{min(r[case + ' broker'] for r in rounds) / n * 1e6:>11.2f}{cores:>7.2f}   "
              + " ".join(f"{x:.0%}" for x in ratios))
    print("CPU: this process's CPU time per message (least of the rounds; the broker's not "
          "counted), and the bare loop's as a share of it: the ratio a machine whose cores are "
          "all busy would give; broker us: the throwaway broker's CPU time per message (least "
          "of the rounds); cores: this process's and the broker's CPU time over the best "
          f"round's seconds (the machine has {os.cpu_count()})")
    decode_only(records, args.repeat)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
