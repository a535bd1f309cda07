"""One streamed request to the chat model, with what the service has said about models.

When the service has shut down our default chat model, its successor (CHAT_FALLBACK_MODEL)
answers and the first reply says so; a parameter a newer model refuses (a temperature other than
its default) is dropped for that model. Both are remembered for the process
(`service.retirement`), so nothing is sent twice to be refused twice. Failures become
`ServiceError`s that say what to do (`service.errors.explain`).
"""

from __future__ import annotations

import logging
from typing import Iterator

from ..config import Settings
from ..errors import AppError
from ..i18n import Text
from ..service.errors import explain
from ..service.retirement import model_in_force, refuse_param, refused_params, take_over, unsupported_param
from ..service.sdk import openai

log = logging.getLogger(__name__)

# Sent with every question unless the model refuses it: a low temperature keeps answers to what
# the transcript says. Newer models (gpt-6-luna) take only their default and answer 400; the
# parameter is then dropped for that model, for the process (`_create`).
CHAT_TEMPERATURE = 0.2
OPTIONAL_PARAMS = {"temperature": CHAT_TEMPERATURE}

ANSWERING = Text("Answering")  # starts the message of an error while answering


def open_stream(client, messages: list[dict], settings: Settings) -> tuple[Iterator[str], str | None]:
    """Send a request: its text as it streams, and the words announcing a successor if one took
    over (see `_open`)."""
    stream, model, announcement = _open(client, messages, settings)
    return _stream(stream, model, settings), announcement


def _open(client, messages: list[dict], settings: Settings) -> tuple[object, str, str | None]:
    """Send the request: the open stream, the model answering, and the words announcing a
    successor when the service no longer serves our default model (the first time only)."""
    model, announcement = model_in_force(settings, chat=True), None
    while True:  # ends: a second refusal (the successor's) raises in `take_over`
        try:
            return _create(client, messages, model, settings), model, announcement
        except openai.NotFoundError as e:
            taken = take_over(e, settings, model, chat=True)
            if taken is None:
                raise explain(e, settings, model=model, what=ANSWERING, chat=True) from e
            model, announcement = taken
        except Exception as e:
            raise explain(e, settings, model=model, what=ANSWERING, chat=True) from e


def _create(client, messages: list[dict], model: str, settings: Settings):
    """The streaming request, without the optional parameters this model refused before; a
    refusal now drops the parameter and sends again (at most once per parameter)."""
    refused = refused_params(settings, model)
    params = {name: value for name, value in OPTIONAL_PARAMS.items() if name not in refused}
    try:
        return client.chat.completions.create(model=model, messages=messages, stream=True, **params)
    except openai.BadRequestError as e:
        param = unsupported_param(e, params)
        if param is None:
            raise
        log.info("%s refuses %s=%r: sending without it from now on", model, param, params[param])
        refuse_param(settings, model, param)
    return _create(client, messages, model, settings)


def _stream(stream, model: str, settings: Settings) -> Iterator[str]:
    try:
        for event in stream:
            for choice in event.choices or []:
                if choice.delta and choice.delta.content:
                    yield choice.delta.content
    except AppError:
        raise
    except Exception as e:
        raise explain(e, settings, model=model, what=ANSWERING, chat=True) from e
