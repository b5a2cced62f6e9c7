"""What each training stack needs: resume rules, pinned code, DeepSpeed config."""
