"""Commands around the core: the command line, data install and pack, pretrain and bench."""
