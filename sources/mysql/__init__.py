"""``type = "mysql"``: MySQL 8 / MariaDB 10.6+ change data capture, a lock-free parallel
snapshot by primary-key chunks, then the binlog, exactly once."""
