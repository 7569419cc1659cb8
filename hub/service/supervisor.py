"""The pipelines of a state folder, kept across restarts of the service.

Layout of ``--state DIR`` (Kafka Connect keeps configs and targets in topics; here, files)::

    DIR/_lock                          held while a service runs on DIR
    DIR/pipelines/<name>/pipeline.toml the pipeline as created (mode 0600: it may hold secrets)
    DIR/pipelines/<name>/target.json   {"target": running|paused|stopped|finished,
                                        "savepoint": folder to resume from, or null}
    DIR/checkpoints/<name>/            its checkpoints, unless [checkpoint] dir says otherwise
                                        (kept when the pipeline is deleted, as Kafka Connect
                                        keeps offsets: creating it again resumes)

On start every pipeline whose target is ``running`` starts again, resuming from its latest
completed checkpoint (or the savepoint it was stopped with and resumed from).
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import threading
import tomllib
import uuid
from typing import Any

from hub.config import PipelineSpec, load_pipeline
from hub.control import PipelineLock
from hub.errors import ConfigErrors
from hub.service.managed import STOP_WAIT_S, Conflict, ManagedPipeline
from runtime.checkpoint.storage import write_atomically
from runtime.errors import ConfigError, HubError

log = logging.getLogger("hub.service")

#: how a request body is named in its error lines (``body:7: sink.path: required, ...``)
BODY = "body"


class NotFound(HubError):
    """No pipeline of that name."""


class Broken(HubError):
    """A stored pipeline whose file does not load any more (an ``${ENV}`` it names is gone, a
    plugin was uninstalled): listed, deletable, not runnable until fixed."""

    def __init__(self, name: str, problems: str):
        self.name, self.problems = name, problems.splitlines()
        super().__init__(f"pipeline {name!r} does not load any more: {self.problems[0]}")


class Supervisor:
    """Creates, runs, stops and forgets the pipelines of one state folder.  Thread-safe."""

    def __init__(self, state_dir: str):
        self.root = os.path.abspath(state_dir)
        self.pipelines_dir = os.path.join(self.root, "pipelines")
        self.pipelines: dict[str, ManagedPipeline] = {}
        #: pipelines whose stored file does not load any more (an env var gone): name -> lines
        self.broken: dict[str, str] = {}
        self._lock = threading.RLock()
        self._service_lock = PipelineLock(self.root)
        self._closing = False

    # -- life of the service --------------------------------------------------------------------
    def open(self) -> None:
        """Lock the state folder and start every pipeline whose target is running."""
        os.makedirs(self.pipelines_dir, exist_ok=True)
        try:
            self._service_lock.acquire("service")
        except HubError:
            raise HubError(f"another hub serve runs on {self.root} (it holds "
                           f"{self._service_lock.path})") from None
        for name in sorted(os.listdir(self.pipelines_dir)):
            folder = os.path.join(self.pipelines_dir, name)
            if name.startswith(".") or not os.path.isdir(folder):
                continue
            try:
                spec = self._load(os.path.join(folder, "pipeline.toml"))
            except (ConfigErrors, ConfigError) as exc:
                self.broken[name] = str(exc)
                log.error("pipeline %s does not load any more: %s", name, exc)
                continue
            pipeline = ManagedPipeline(spec, self._on_event)
            self.pipelines[spec.name] = pipeline
            target = self._target(name)
            if target["target"] == "running":
                pipeline.start(target.get("savepoint"))
            else:
                pipeline.state = target["target"].upper()

    def close(self, wait_s: float = STOP_WAIT_S) -> None:
        """Stop every running pipeline with a final checkpoint, keeping their targets (they
        start again with the service)."""
        with self._lock:
            running = [p for p in self.pipelines.values() if p.running]
            self._closing = True
        for p in running:
            p.stop(wait_s=0)
        for p in running:
            p.join(wait_s)
        self._service_lock.release()

    # -- pipelines ------------------------------------------------------------------------------
    def validate(self, text: str) -> PipelineSpec:
        """The pipeline a TOML text describes; :class:`ConfigErrors` (lines naming ``body``)
        when it has problems.  Connects nowhere."""
        os.makedirs(os.path.join(self.pipelines_dir, ".incoming"), exist_ok=True)
        path = os.path.join(self.pipelines_dir, ".incoming", f"{uuid.uuid4().hex}.toml")
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
            f.write(text)
        try:
            return self._load(path, label=BODY)
        finally:
            os.remove(path)

    def create(self, text: str) -> ManagedPipeline:
        """Validate, store and start a new pipeline."""
        spec = self.validate(text)
        with self._lock:
            if spec.name in self.pipelines or spec.name in self.broken:
                raise Conflict(f"pipeline {spec.name!r} already exists")
            for other in self.pipelines.values():
                if spec.checkpoint.dir == other.spec.checkpoint.dir:
                    # two runs on one checkpoint folder would resume each other's state
                    raise Conflict(f"pipeline {other.name!r} already keeps its checkpoints in "
                                   f"{other.spec.checkpoint.dir}: give [checkpoint] dir "
                                   f"another folder")
            folder = os.path.join(self.pipelines_dir, spec.name)
            os.makedirs(folder, exist_ok=True)
            write_atomically(os.path.join(folder, "pipeline.toml"), text.encode())
            os.chmod(os.path.join(folder, "pipeline.toml"), 0o600)
            spec = self._load(os.path.join(folder, "pipeline.toml"))
            pipeline = ManagedPipeline(spec, self._on_event)
            self.pipelines[spec.name] = pipeline
            self._set_target(spec.name, "running")
        pipeline.start()
        return pipeline

    def update(self, name: str, text: str) -> ManagedPipeline:
        """Replace the file of pipeline ``name`` (Kafka Connect's ``PUT .../config``): the new
        file is validated first; a running pipeline stops with a final checkpoint and starts
        again from it under the new file."""
        spec = self.validate(text)
        if spec.name != name:
            raise ConfigError(f"the file names pipeline {spec.name!r}, not {name!r}: a "
                              f"pipeline keeps its name", key="pipeline.name")
        with self._lock:
            broken = name in self.broken
            old = None if broken else self.get(name)
            for other in self.pipelines.values():
                if other.name != name and spec.checkpoint.dir == other.spec.checkpoint.dir:
                    raise Conflict(f"pipeline {other.name!r} already keeps its checkpoints "
                                   f"in {spec.checkpoint.dir}: give [checkpoint] dir another "
                                   f"folder")
        was_running = old is not None and old.running
        if old is not None and not old.stop(then="STOPPED"):
            raise Conflict(f"pipeline {name!r} did not stop within {STOP_WAIT_S:.0f}s; its "
                           f"final checkpoint is still running")
        with self._lock:
            path = os.path.join(self.pipelines_dir, name, "pipeline.toml")
            write_atomically(path, text.encode())
            os.chmod(path, 0o600)
            pipeline = ManagedPipeline(self._load(path), self._on_event)
            if old is not None:
                pipeline.state, pipeline.savepoint = old.state, old.savepoint
            self.broken.pop(name, None)
            self.pipelines[name] = pipeline
        target = self._target(name)
        if was_running or (broken and target["target"] == "running"):
            self._set_target(name, "running", target.get("savepoint"))
            pipeline.start(target.get("savepoint"))
        return pipeline

    def get(self, name: str) -> ManagedPipeline:
        """The pipeline ``name``; :class:`NotFound`, or :class:`Broken` for a stored pipeline
        whose file does not load any more."""
        with self._lock:
            pipeline = self.pipelines.get(name)
            broken = self.broken.get(name)
        if broken is not None:
            raise Broken(name, broken)
        if pipeline is None:
            raise NotFound(f"no pipeline named {name!r}")
        return pipeline

    def pause(self, name: str) -> ManagedPipeline:
        """Stop with a final checkpoint; ``resume`` goes on from it (Kafka Connect's pause)."""
        p = self.get(name)
        self._set_target(name, "paused")
        p.stop(then="PAUSED", wait_s=0)
        return p

    def resume(self, name: str) -> ManagedPipeline:
        p = self.get(name)
        if p.running and p.stopping:  # a pause or stop still taking its final checkpoint
            p.join(STOP_WAIT_S)
        if p.running:
            if p.stopping:
                raise Conflict(f"pipeline {name!r} is still stopping (its final checkpoint "
                               f"runs); try again in a moment")
            return p
        savepoint = self._target(name).get("savepoint")
        self._set_target(name, "running", savepoint)
        p.start(savepoint)
        return p

    def stop(self, name: str, savepoint: str | None) -> ManagedPipeline:
        """Stop with a final checkpoint, or a savepoint when named; a later resume starts from
        that savepoint."""
        p = self.get(name)
        if savepoint is not None:
            _check_savepoint_name(savepoint)
            if not p.running:
                raise Conflict(f"pipeline {name!r} is not running ({p.current_state()}): no "
                               f"savepoint to take; it resumes from its latest checkpoint")
        self._set_target(name, "stopped")
        ended = p.stop(savepoint, then="STOPPED")
        if ended and savepoint is not None and p.savepoint:
            self._set_target(name, "stopped", p.savepoint)
        return p

    def restart(self, name: str) -> ManagedPipeline:
        """Stop (final checkpoint) and start again from it."""
        p = self.get(name)
        if not p.stop(then="STOPPED"):
            raise Conflict(f"pipeline {name!r} did not stop within {STOP_WAIT_S:.0f}s; "
                           f"its final checkpoint is still running")
        self._set_target(name, "running")
        p.start()
        return p

    def delete(self, name: str) -> None:
        """Stop (final checkpoint) and forget the pipeline; its checkpoints stay."""
        with self._lock:
            if self.broken.pop(name, None) is not None:
                shutil.rmtree(os.path.join(self.pipelines_dir, name), ignore_errors=True)
                return
        p = self.get(name)
        if not p.stop(then="STOPPED"):
            raise Conflict(f"pipeline {name!r} did not stop within {STOP_WAIT_S:.0f}s")
        with self._lock:
            self.pipelines.pop(name, None)
            shutil.rmtree(os.path.join(self.pipelines_dir, name), ignore_errors=True)

    def savepoint(self, name: str, savepoint: str, stop: bool) -> str:
        p = self.get(name)
        _check_savepoint_name(savepoint)
        path = p.request_savepoint(savepoint, stop, p.spec.checkpoint.timeout_s + 30)
        if stop:
            self._set_target(name, "stopped", path)
        return path

    # -- files ----------------------------------------------------------------------------------
    def _load(self, path: str, label: str | None = None) -> PipelineSpec:
        """Load a pipeline file; checkpoints default to ``DIR/checkpoints/<name>``."""
        try:
            spec = load_pipeline(path)
        except ConfigErrors as exc:
            raise ConfigErrors(label or path, exc.errors) from None
        with open(path, "rb") as f:
            raw = tomllib.load(f)
        ckpt, errors = raw.get("checkpoint", {}), raw.get("errors", {})
        if "dir" not in ckpt:
            folder = os.path.join(self.root, "checkpoints", spec.name)
            dead = spec.errors.dead_letter_path if "dead-letter-path" in errors \
                else os.path.join(folder, "dead-letter")
            spec = dataclasses.replace(
                spec, checkpoint=dataclasses.replace(spec.checkpoint, dir=folder),
                errors=dataclasses.replace(spec.errors, dead_letter_path=dead))
        return spec

    def _target(self, name: str) -> dict[str, Any]:
        path = os.path.join(self.pipelines_dir, name, "target.json")
        try:
            with open(path) as f:
                target = json.load(f)
        except FileNotFoundError:
            return {"target": "running", "savepoint": None}
        except (OSError, ValueError) as exc:
            log.warning("%s: unreadable (%s): starting the pipeline", path, exc)
            return {"target": "running", "savepoint": None}
        if target.get("target") not in ("running", "paused", "stopped", "finished"):
            log.warning("%s: unknown target %r: starting the pipeline", path, target.get("target"))
            target["target"] = "running"
        return target

    def _set_target(self, name: str, target: str, savepoint: str | None = None) -> None:
        folder = os.path.join(self.pipelines_dir, name)
        if os.path.isdir(folder):
            write_atomically(os.path.join(folder, "target.json"),
                             json.dumps({"target": target, "savepoint": savepoint}).encode())

    def _on_event(self, pipeline: ManagedPipeline, event: str) -> None:
        """A run started from its restore point: one resumed from a savepoint goes on from its
        own checkpoints next time (the savepoint is now its newest checkpoint).  A run ended:
        a bounded pipeline that finished is not started again with the service."""
        target = self._target(pipeline.name)
        if event == "restored" and target.get("savepoint") and target["target"] == "running":
            self._set_target(pipeline.name, "running")
        elif event == "ended" and pipeline.state == "FINISHED" and not self._closing:
            self._set_target(pipeline.name, "finished")


def _check_savepoint_name(name: str) -> None:
    if not name or "/" in name or name.startswith(".") or len(name) > 200:
        raise ConfigError("savepoint name: one folder name (no '/', not starting with '.')",
                          key="savepoint")
