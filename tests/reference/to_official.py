"""Continue an ijepa-deno run in the official I-JEPA code (facebookresearch/ijepa).

Usage (from a checkout of the official repository, with PyTorch installed):

    python to_official.py runs/quick-.../final.safetensors out.pth.tar

Reads our safetensors file (plain Python + torch, no extra package), builds the official encoder,
predictor and target encoder with the file's config, loads every tensor with strict key checks,
prints what it loaded, and writes a checkpoint in the official train.py layout (encoder, predictor,
target_encoder, opt, scaler, epoch, ...) that the official `load_checkpoint` reads without falling
back to epoch 0 (it swallows errors and restarts when a part is missing).
"""
import json
import struct
import sys

import torch

from src.models.vision_transformer import VisionTransformer, VisionTransformerPredictor

DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "I64": torch.int64}


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", {})
    tensors = {}
    for name, info in header.items():
        a, b = info["data_offsets"]
        t = torch.frombuffer(bytearray(data[a:b]), dtype=DTYPES[info["dtype"]])
        tensors[name] = t.reshape(info["shape"]).clone()
    return tensors, meta


def part(tensors, prefix):
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


def main(src, dst):
    tensors, meta = read_safetensors(src)
    if meta.get("format") != "ijepa-deno-weights":
        sys.exit(f"{src}: not an ijepa-deno weights file")
    cfg = json.loads(meta["config"])
    common = dict(img_size=[cfg["imageSize"]], patch_size=cfg["patchSize"], in_chans=cfg["channels"],
                  embed_dim=cfg["width"], depth=cfg["depth"], num_heads=cfg["heads"],
                  mlp_ratio=cfg["mlpHidden"] / cfg["width"], qkv_bias=True)
    encoder = VisionTransformer(**common)
    target = VisionTransformer(**common)
    predictor = VisionTransformerPredictor(
        num_patches=encoder.patch_embed.num_patches, embed_dim=cfg["width"],
        predictor_embed_dim=cfg["predictorWidth"], depth=cfg["predictorDepth"], num_heads=cfg["predictorHeads"])
    for name, model in (("encoder", encoder), ("target_encoder", target), ("predictor", predictor)):
        sd = part(tensors, name + ".")
        if not sd and name == "target_encoder":
            sd = part(tensors, "encoder.")  # weights-only export: the target starts as the encoder
        msg = model.load_state_dict(sd, strict=True)
        print(f"{name}: loaded {len(sd)} tensors ({sum(v.numel() for v in sd.values())} values), {msg}")
    # The official optimizer layout (init_opt's 4 groups); its state starts empty here.
    groups = [
        {"params": [p for n, p in encoder.named_parameters() if "bias" not in n and len(p.shape) != 1]},
        {"params": [p for n, p in predictor.named_parameters() if "bias" not in n and len(p.shape) != 1]},
        {"params": [p for n, p in encoder.named_parameters() if "bias" in n or len(p.shape) == 1],
         "WD_exclude": True, "weight_decay": 0},
        {"params": [p for n, p in predictor.named_parameters() if "bias" in n or len(p.shape) == 1],
         "WD_exclude": True, "weight_decay": 0},
    ]
    opt = torch.optim.AdamW(groups)
    wrap = lambda m: {"module." + k: v for k, v in m.state_dict().items()}  # DDP's prefix, as train.py saves
    step = int(json.loads(meta.get("step", "0")))
    torch.save({"encoder": wrap(encoder), "predictor": wrap(predictor), "target_encoder": wrap(target),
                "opt": opt.state_dict(), "scaler": None, "epoch": 0, "loss": None,
                "batch_size": None, "world_size": 1, "lr": None, "ijepa_deno_step": step}, dst)
    print(f"wrote {dst} (our step {step}); point the official config's read_checkpoint at it with load_checkpoint: true")


if __name__ == "__main__":
    main(*sys.argv[1:3])
