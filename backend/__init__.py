import os

# Piccolo finds its engine through this module wherever the process was started from.
os.environ.setdefault("PICCOLO_CONF", "backend.piccolo_conf")
