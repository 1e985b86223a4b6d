"""Training: world samples -> model batches (``batching``), the flags (``arguments``), the model and optimiser
(``model_setup``), the task schedule (``schedule``), one step (``step``), checkpoints (``checkpoints``); the loop is
``hyperseg_lite.train``."""
