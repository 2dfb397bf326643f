"""The method of arXiv 2312.10835 without queues or databases: job parameters, presets, the cascade's steps,
percentiles and tau, the model adapters, the shapes world and the paper's pipeline object. Imports only ``core``."""
