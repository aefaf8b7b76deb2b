"""tfmot's compression and the patch surgery: pruning, clustering, quantization-aware training and patch models.
Editing them reruns `prune`, `deploy` and the students, never `train`."""
