"""Plain ``nn.Module`` building blocks (no Lightning inside): encoders, decoders, search."""
