# 91-smuggling-tls: the smuggling corpus of story 90 over TLS: every case of tests/corpus/smuggling.txt, sent in one TLS record and one byte per record, gets exactly its expected outcome from the daemon's record layer and head checks; a routed request's client close_notify gets the worker's close and nothing smuggled. Also with PORTSHARE_DEFAULTS=1 (over 127.0.0.1 and ::1).
import os
import runpy

runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), "90-smuggling.py"),
               init_globals={"SMUGGLING_TLS": True}, run_name="__main__")
