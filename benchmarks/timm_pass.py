"""timm's evaluation of an image folder, one pass per size, as its validate.py does; run by
`benchmarks/peer_timm.py` as a script in a process of its own (PyTorch's torchvision crashes
when it is imported after TensorFlow in one process). Prints the wall seconds of the passes.

  python benchmarks/timm_pass.py NAME FOLDER RESOLUTIONS PRECISION BATCH_SIZE WORKERS
"""

import os
import sys
import time

import timm
import torch
from timm.data import create_transform, resolve_data_config
from torchvision.datasets import ImageFolder


def timm_seconds(name, folder, resolutions, precision, batch_size, workers):
    torch.set_num_threads(os.cpu_count())
    model = timm.create_model(name, pretrained=False).eval()
    start = time.perf_counter()
    for r in resolutions:
        config = resolve_data_config({"input_size": (3, r, r), "crop_pct": 0.875}, model=model)
        loader = torch.utils.data.DataLoader(ImageFolder(folder, transform=create_transform(**config)),
                                             batch_size=batch_size, num_workers=workers)
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bfloat16"):
            for images, _ in loader:
                model(images).float().softmax(-1).topk(5)
    return time.perf_counter() - start


if __name__ == "__main__":
    name, folder, sizes, precision, batch, workers = sys.argv[1:]
    print(timm_seconds(name, folder, [int(s) for s in sizes.split(",")], precision, int(batch), int(workers)))
