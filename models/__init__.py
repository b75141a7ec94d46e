"""Model runtimes and the model catalog: embedder, LLM, CLIP, OCR; knows nothing of kb/ or Qt."""

import os

# Torch's OpenMP workers spin for a while after every operation by default, holding both cores of
# a small machine and starving the window's thread while indexing (bench: 370 ms event-loop stalls
# on two cores). Passive workers sleep instead; set before torch is first imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
