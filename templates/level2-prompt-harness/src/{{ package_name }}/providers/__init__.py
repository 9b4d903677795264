"""Providers turn a rendered chat request into a completion, one module each:

- `openai_compatible.py`: any OpenAI-compatible endpoint (OpenAI, Azure, a gateway,
  Ollama, vLLM, llama.cpp server, LM Studio), over the HTTP clients of `clients.py`;
- `local.py`: the echo of the prompt, and offline embeddings from character trigrams;
- `python_function.py`: a function of yours (your RAG pipeline, your agent), so a suite
  tests your application and not only a raw model;
- `recordings.py`: responses captured by --record, replayed offline and the same every
  time;
- `redaction.py`: the wrapper that blanks secrets out of every answer and error;
- `base.py`: the request, the completion and the error they all share.

Only the endpoint's modules import the HTTP client, so a replayed run never loads it.
"""
