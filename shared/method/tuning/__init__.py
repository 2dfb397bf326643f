"""`adq tune`: search the method's settings for the best judge score per budget (``search``), grade the result on
held-out prompts (``heldout``) and write the frontier, plot and presets files (``report``)."""
