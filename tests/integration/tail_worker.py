"""Tails one file until killed (the crash test runs it as a subprocess).

python tail_worker.py CONFIG_JSON DEFINITIONS_TOPIC MEMBER_ID
"""

from __future__ import annotations

import json
import sys
import threading

from datamover.hooks.streams import file_tailer
from datamover.streams.settings import LogPublishingConfig

if __name__ == "__main__":
    config = LogPublishingConfig.model_validate(json.loads(sys.argv[1]))
    tailer = file_tailer(config, config.files[0], sys.argv[3], definitions=sys.argv[2])
    print("tailing", flush=True)
    tailer.run(threading.Event())
