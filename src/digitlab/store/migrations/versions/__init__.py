"""Migration revisions, one file each, named <date>_<revision>_<slug>.py."""
