"""Tasks on the core: each one file or package, named by import path in its experiment files, touching nothing of
the core (data, models, method bases, CLI). ``image_qa``: image + question → answer; ``speech_synthesis``: text →
speech, with its pictures and sound (``speech_synthesis.samples``). A task of your own lives in your own file the
same way (docs/adding_a_task.md)."""
