"""LLaVA-1.5's prompt (conv_vicuna_v1) as src/tokenizer/chat_template.cc builds it, and
the token sequences MiniLLaVA is trained on."""
from typing import List, Tuple

SYSTEM = ("A chat between a curious human and an artificial intelligence assistant. "
          "The assistant gives helpful, detailed, and polite answers to the human's questions.")
BOS, EOS = 1, 2


def inference_ids(sp, question: str, image_id: int) -> List[int]:
    """What the engine feeds for `ficoco run --prompt question`: BOS, the text before
    <image>, the image id, the text after it (each chunk SentencePiece-encoded with
    its dummy prefix)."""
    return [BOS] + sp.encode(SYSTEM + " USER: ") + [image_id] + sp.encode("\n" + question + " ASSISTANT:")


def conversation_ids(sp, turns: List[Tuple[str, str]], image_id: int) -> Tuple[List[int], List[int]]:
    """Multi-turn training sequence and its labels (-100 outside the answers).
    The first turn is exactly inference_ids(); each answer is followed by </s> (EOS),
    later turns continue with "USER: ..." as LLaVA's SeparatorStyle.TWO does."""
    ids, labels = [], []
    for k, (q, a) in enumerate(turns):
        prompt = inference_ids(sp, q, image_id) if k == 0 else sp.encode("USER: " + q + " ASSISTANT:")
        answer = sp.encode(a) + [EOS]
        ids += prompt + answer
        labels += [-100] * len(prompt) + answer
    return ids, labels
