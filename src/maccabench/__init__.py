"""maccabench: reproducible pipeline for offline MARL with causal credit assignment (MACCA)."""
__version__ = "0.1.0"
