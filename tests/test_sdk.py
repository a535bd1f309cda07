"""The openai package is imported beside a job's first work, not before it (core/service/sdk.py):
about 1.2 s of one core that the decoder, the encoder and the first chunk no longer wait for."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import openai

from core.service import sdk

ROOT = Path(__file__).resolve().parent.parent


def python(code: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_importing_core_does_not_import_openai():
    """The CLI's, the jobs' and the pipeline's modules load without it: a top-level `import openai`
    anywhere in core puts the 1.2 s back in front of every transcription."""
    seen = python("import json, sys\n"
                  "import core.cli, core.job, core.transcribe.pipeline, core.answer.chat, core.service.models\n"
                  "print(json.dumps({'openai': 'openai' in sys.modules}))")
    assert seen == {"openai": False}


def test_a_job_starts_the_import_on_a_thread_of_its_own():
    """`start` returns with the import under way on its own thread; the first name read waits for
    it and is the real module's."""
    seen = python("import json, threading\n"
                  "from core.service import sdk\n"
                  "sdk.start()\n"
                  "names = [th.name for th in threading.enumerate()]\n"
                  "error = sdk.openai.NotFoundError\n"
                  "import openai\n"
                  "print(json.dumps({'threads': names, 'same': error is openai.NotFoundError}))")
    assert "import-openai" in seen["threads"]
    assert seen["same"] is True


def test_the_stand_in_is_the_module_once_imported():
    assert sdk.openai.OpenAI is openai.OpenAI
    assert sdk.module() is openai
    sdk.start()  # already imported: nothing to do, no thread
    assert isinstance(sdk.openai.APIStatusError, type)
