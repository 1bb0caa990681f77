"""Text models: the sentiment classifier and character-LM builders, the
word language model and its pretraining (with the encoder cache), word
embeddings, adversarial fine-tuning, sampling, evaluation and the
bag-of-words baselines."""
