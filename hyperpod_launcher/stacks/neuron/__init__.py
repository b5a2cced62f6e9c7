"""NxD Training on Trainium (`run.model_type: neuron-hf`)."""
