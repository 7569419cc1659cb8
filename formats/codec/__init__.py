"""Value codecs shared by the file and message formats."""
