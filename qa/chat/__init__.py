"""Chat sessions as plain data: turns and follow-ups (`turns.py`), /commands (`commands.py`), and
sessions with their transcripts and persistence (`session.py`).

A follow-up ("and what did they say about AI?") is rewritten into a standalone question
before retrieval: by the model when there is one (prompts/rewrite_*.md), else by a rule that
appends the key words of the previous question. The cited passages of the previous turn are
carried into a follow-up's context, so the evidence it builds on stays in front of the model.
Nothing here prints or needs a terminal; `qa/cli/chat.py` is the view.
"""
