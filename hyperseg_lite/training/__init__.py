"""Training: world samples -> model batches (``batching``) and the loop (``hyperseg_lite.train``)."""
