"""Coverage-guided fuzzing of every decoder, with atheris (libFuzzer for Python).

Run from the repository root::

    python -m fuzz --list                      # the targets, fast or slow
    python -m fuzz msg-addrv2 --runs 1000000   # one target, N inputs
    python -m fuzz v2-after-handshake --seconds 600

Each target feeds bytes to one decoder and lets only that decoder's documented
errors escape (:data:`fuzz.targets.TARGETS`); anything else, or an input that takes
over 1 s (libFuzzer's ``-timeout=1``), is a finding: libFuzzer prints it, writes the
input to ``crash-*`` / ``timeout-*`` in the working directory and exits non-zero.
The seed corpus comes from tests/data (real Bitcoin Core transcripts) and a few
encoded examples; the grown corpus is kept in ``.fuzz-corpus/<target>/`` (ignored
by git).
"""
