"""Where params come from: a run directory (LoRA adapters merged onto their base) or a Hugging
Face folder, restored straight into their shardings."""
