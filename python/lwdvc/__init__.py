"""lwdvc: channel pruning, distillation and compaction of learnt video decoders."""
