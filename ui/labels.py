"""The page's fixed words and choices: its labels in English and Spanish (`gr.I18n` translates
labels only; run-time messages go through `core.i18n`), the language menu, the file types taken,
and the example questions."""

import gradio as gr

MEDIA_TYPES = ["audio", "video", ".mp3", ".m4a", ".wav", ".ogg", ".oga", ".opus", ".flac", ".webm",
               ".mp4", ".mov", ".mkv", ".avi", ".aac", ".wma"]
LANGUAGES = [("Auto", ""), ("English", "en"), ("Español", "es"), ("Français", "fr"), ("Deutsch", "de"),
             ("Italiano", "it"), ("Português", "pt"), ("Nederlands", "nl"), ("Polski", "pl"),
             ("Русский", "ru"), ("中文", "zh"), ("日本語", "ja"), ("한국어", "ko"), ("العربية", "ar"),
             ("हिन्दी", "hi"), ("Türkçe", "tr")]
SPEAKER_CHOICES = [("Auto", "auto"), *((str(n), str(n)) for n in range(1, 9)), ("Off", "off")]
EXPORT_KINDS = ("txt", "srt", "vtt", "json", "rttm")  # one button each; rttm only with speakers

I18N = gr.I18n(
    en={
        "title": "# Talk to your Audio\nDrop in a recording, get a timestamped transcript, then ask "
                 "questions answered only from what was said.",
        "input": "Recording",
        "upload_tab": "Upload", "record_tab": "Record", "link_tab": "Link",
        "upload": "Audio or video file", "record": "Record from the microphone",
        "link": "Media URL", "link_info": "A link to an audio or video file, or to a video site's page.",
        "language": "Spoken language", "vocabulary": "Vocabulary hint (optional)",
        "vocabulary_info": "Names, jargon and spellings that appear in the recording.",
        "key": "Your OpenAI API key (optional)", "key_info": "Used only for your requests in this tab; never "
               "stored or logged, and gone when you close the tab. Without it, a local Whisper model "
               "transcribes here and the chat shows the matching passages.",
        "key_info_budget": "Used only for your requests in this tab, in place of this server's key, so this "
                           "server's limits do not apply to them; never stored or logged.",
        "process": "Process", "chat": "Chat with the recording", "question": "Your question",
        "question_locked": "Process a recording first, then ask about it here.",
        "question_ready": "Ask about the recording and press Enter",
        "clear": "Clear chat", "examples": "Examples",
        "summarize": "Summary and chapters when the transcript is ready",
        "summarize_info": "A few requests to the chat model (a cost on your key); off: chapters by time and keywords.",
        "summary": "Summary and chapters",
        "speakers": "Speakers", "speakers_info": "How many people talk: Auto finds out; Off finds none.",
        "speaker_pick": "Speaker (or click a name in the transcript)", "speaker_name": "Name",
        "rename": "Rename",
        "recording_tab": "Transcribe", "library_tab": "Library", "sign_out": "Sign out",
        "library_search": "Search your recordings", "library_ask": "Ask across your recordings",
        "library_filter": "Filter the list", "library_sort": "Sort by",
        "library_sort_newest": "Newest", "library_sort_oldest": "Oldest", "library_sort_title": "Title",
        "library_sort_longest": "Longest",
        "library_pick": "Recording to rename or remove", "library_title": "Title", "library_remove": "Remove",
        "library_scope": "Search and ask only these recordings (none: all of them)", "library_span": "Added",
        "library_span_any": "Any time", "library_span_today": "Today", "library_span_week": "Last 7 days",
        "library_span_month": "Last 30 days", "library_span_year": "This year",
    },
    es={
        "title": "# Habla con tu audio\nSube una grabación, obtén una transcripción con marcas de tiempo y "
                 "haz preguntas que se responden solo con lo que se dijo.",
        "input": "Grabación",
        "upload_tab": "Subir", "record_tab": "Grabar", "link_tab": "Enlace",
        "upload": "Archivo de audio o vídeo", "record": "Grabar con el micrófono",
        "link": "URL del medio", "link_info": "Un enlace a un archivo de audio o vídeo, o a la página de un sitio de vídeo.",
        "language": "Idioma hablado", "vocabulary": "Vocabulario (opcional)",
        "vocabulary_info": "Nombres, jerga y grafías que aparecen en la grabación.",
        "key": "Tu clave de API de OpenAI (opcional)", "key_info": "Solo se usa para tus peticiones en esta "
               "pestaña; no se guarda ni se registra y desaparece al cerrar la pestaña. Sin ella, un modelo "
               "Whisper local transcribe aquí y el chat muestra los pasajes que coinciden.",
        "key_info_budget": "Solo se usa para tus peticiones en esta pestaña, en lugar de la clave de este "
                           "servidor, así que sus límites no se les aplican; no se guarda ni se registra.",
        "process": "Procesar", "chat": "Conversa con la grabación", "question": "Tu pregunta",
        "question_locked": "Primero procesa una grabación; luego pregunta aquí.",
        "question_ready": "Pregunta sobre la grabación y pulsa Intro",
        "clear": "Borrar chat", "examples": "Ejemplos",
        "summarize": "Resumen y capítulos cuando la transcripción esté lista",
        "summarize_info": "Unas pocas peticiones al modelo de chat (un coste en tu clave); sin ello: capítulos por "
                          "tiempo y palabras clave.",
        "summary": "Resumen y capítulos",
        "speakers": "Hablantes", "speakers_info": "Cuántas personas hablan: Auto lo averigua; Off no busca ninguna.",
        "speaker_pick": "Hablante (o haz clic en un nombre de la transcripción)", "speaker_name": "Nombre",
        "rename": "Renombrar",
        "recording_tab": "Transcribir", "library_tab": "Biblioteca", "sign_out": "Cerrar sesión",
        "library_search": "Busca en tus grabaciones", "library_ask": "Pregunta a todas tus grabaciones",
        "library_filter": "Filtra la lista", "library_sort": "Ordenar por",
        "library_sort_newest": "Más recientes", "library_sort_oldest": "Más antiguas", "library_sort_title": "Título",
        "library_sort_longest": "Más largas",
        "library_pick": "Grabación que renombrar o quitar", "library_title": "Título", "library_remove": "Quitar",
        "library_scope": "Busca y pregunta solo en estas grabaciones (ninguna: en todas)", "library_span": "Añadidas",
        "library_span_any": "Cuando sea", "library_span_today": "Hoy", "library_span_week": "Últimos 7 días",
        "library_span_month": "Últimos 30 días", "library_span_year": "Este año",
    },
)

EXAMPLE_QUESTIONS = [
    "Summarize the recording in five bullet points.",
    "What decisions were made, and when?",
    "¿Cuáles son las fechas y cifras que se mencionan?",
]
