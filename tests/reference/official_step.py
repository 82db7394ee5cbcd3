"""One I-JEPA train step built from the official code's own modules, timed on the bench's masks.

This checks tests/reference/ijepa_step.py (our PyTorch re-statement, which `deno task bench
--vs-torch` times) against facebookresearch/ijepa: same shapes, same masks, same BLAS and threads,
so the two step times should agree (the project asks for within 15%). It needs a checkout of the
official repository, whose `src` package it imports; nothing of that repository is copied here.

    python3 tests/reference/official_step.py SPEC.json /path/to/ijepa

or `deno task bench --vs-torch --official /path/to/ijepa`, which writes SPEC.json (the same file
ijepa_step.py reads) and prints both times side by side.

The step follows the official `train_step` (src/train.py) without bf16 autocast (CPU, float32):
target encoder on the whole image, layer_norm, `apply_masks` + `repeat_interleave_batch`; encoder
on the context masks; predictor; smooth-L1; AdamW in `init_opt`'s parameter groups; EMA update.
Where our masker's targets come as [M, B, Lt], the official collator's `masks_pred` is a list of
M tensors [B, Lt]: the same indices, in the official container.
"""

import copy
import json
import sys
from functools import partial

import torch
import torch.nn as nn
import torch.nn.functional as F

from ijepa_step import autocast_of, device_of, read_masks, time_steps


def main() -> None:
    spec = json.load(open(sys.argv[1]))
    sys.path.insert(0, sys.argv[2])
    try:
        from src.masks.utils import apply_masks
        from src.models.vision_transformer import VisionTransformer, vit_predictor
        from src.utils.tensors import repeat_interleave_batch
    except ImportError as e:
        sys.exit(f"official_step.py: expected a checkout of facebookresearch/ijepa at {sys.argv[2]}: {e}")

    c = spec["config"]
    torch.set_num_threads(int(spec.get("threads", 2)))
    torch.manual_seed(0)
    B = int(spec["batch"])
    grid = c["image"] // c["patch"]
    encoder = VisionTransformer(
        img_size=[c["image"]], patch_size=c["patch"], in_chans=c["channels"], embed_dim=c["width"],
        depth=c["depth"], num_heads=c["heads"], mlp_ratio=c["mlp"] / c["width"], qkv_bias=True,
        norm_layer=partial(nn.LayerNorm, eps=c["eps"]),
    )
    predictor = vit_predictor(
        num_patches=grid * grid, embed_dim=c["width"], predictor_embed_dim=c["pred_width"],
        depth=c["pred_depth"], num_heads=c["pred_heads"],
    )
    dev = device_of(spec)
    encoder, predictor = encoder.to(dev), predictor.to(dev)
    target = copy.deepcopy(encoder)
    for p in target.parameters():
        p.requires_grad = False
    # init_opt's groups: weight decay on weights, none on biases and 1-D parameters
    groups = []
    for m in (encoder, predictor):
        groups.append({"params": [p for n, p in m.named_parameters() if "bias" not in n and len(p.shape) != 1]})
        groups.append({
            "params": [p for n, p in m.named_parameters() if "bias" in n or len(p.shape) == 1],
            "WD_exclude": True, "weight_decay": 0,
        })
    opt = torch.optim.AdamW(groups, lr=1e-4, weight_decay=0.04)
    images = torch.randn(B, c["channels"], c["image"], c["image"]).to(dev)  # NCHW, as the official loader
    batches = [(a.to(dev), b.to(dev)) for a, b in read_masks(spec)]  # (context [B, Lc], targets [M, B, Lt])
    cast = autocast_of(spec, dev)

    def step(ctx: torch.Tensor, tgt: torch.Tensor) -> float:
        masks_enc = [ctx]
        masks_pred = [tgt[m] for m in range(tgt.shape[0])]
        with cast:
            with torch.no_grad():
                h = target(images)
                h = F.layer_norm(h, (h.size(-1),))
                h = apply_masks(h, masks_pred)
                h = repeat_interleave_batch(h, B, repeat=len(masks_enc))
            z = predictor(encoder(images, masks_enc), masks_enc, masks_pred)
            loss = F.smooth_l1_loss(z.float(), h.float())
        loss.backward()
        opt.step()
        opt.zero_grad()
        with torch.no_grad():
            m = 0.996
            for q, k in zip(encoder.parameters(), target.parameters()):
                k.data.mul_(m).add_((1.0 - m) * q.detach().data)
        return float(loss)

    print(json.dumps({
        **time_steps(step, batches, spec, B), "modules": "official", "device": str(dev), "autocast": spec.get("autocast"),
    }))


if __name__ == "__main__":
    main()
