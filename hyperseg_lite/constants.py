"""Placeholder names and ids shared by the prompt builder, the processor and the model.

The negative ids are the ones the official HyperSeg code uses (``hyperseg/utils/constants.py``);
they never reach the LLM's embedding table: the model replaces every position holding one of them
with an embedding computed elsewhere (image features, FVP tokens, mask queries, regions).
"""

IGNORE_INDEX = -100

IMAGE_TOKEN_INDEX = -200  # <image>: global vision tokens (SigLIP -> projector)
SEG_TOKEN_INDEX = -201  # <seg>: the learnable mask queries
CLS_TOKEN_INDEX = -202  # <cls>: one class name (expanded to its tokens by the processor)
REGION_TOKEN_INDEX = -203  # <region>: one visual prompt (one pooled embedding)
REFER_TOKEN_INDEX = -204  # <refer>: the user's expression followed by [SEG]
TEMPORAL_TOKEN_INDEX = -205  # <temporal>: Fine-grained Visual Perceiver tokens

IMAGE_TOKEN = "<image>"
SEG_TOKEN = "<seg>"
CLS_TOKEN = "<cls>"
REGION_TOKEN = "<region>"
REFER_TOKEN = "<refer>"
TEMPORAL_TOKEN = "<temporal>"
GT_TOKEN = "<gt>"  # replaced by the real vocabulary token [SEG]
SEG_VOCAB_TOKEN = "[SEG]"

PLACEHOLDER_IDS = {
    IMAGE_TOKEN: IMAGE_TOKEN_INDEX,
    SEG_TOKEN: SEG_TOKEN_INDEX,
    CLS_TOKEN: CLS_TOKEN_INDEX,
    REGION_TOKEN: REGION_TOKEN_INDEX,
    REFER_TOKEN: REFER_TOKEN_INDEX,
    TEMPORAL_TOKEN: TEMPORAL_TOKEN_INDEX,
}
