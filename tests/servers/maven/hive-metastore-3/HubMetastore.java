// Starts Hive 3's metastore after creating its transaction tables (locks, transactions) in
// the Derby database: datanucleus.schema.autoCreateAll creates only the catalog's tables, and
// clients that lock tables (pyiceberg's HiveCatalog commits) need the others.  TxnDbUtil is
// what Hive's own tests create them with.  Run by tests/servers/hive_metastore.py as a
// single-file source program (java -cp ... HubMetastore.java -p PORT).
import org.apache.hadoop.hive.metastore.HiveMetaStore;
import org.apache.hadoop.hive.metastore.conf.MetastoreConf;
import org.apache.hadoop.hive.metastore.txn.TxnDbUtil;

public class HubMetastore {
    public static void main(String[] args) throws Throwable {
        TxnDbUtil.prepDb(MetastoreConf.newMetastoreConf());
        HiveMetaStore.main(args);
    }
}
