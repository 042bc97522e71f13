"""PyTorch reference for bench/train: median ms per training step of MONAI's UNet rebuilt with torch.nn.

Same network as labelgraph's UNet (monai.networks.nets.UNet, num_res_units=0, norm INSTANCE, act RELU):
down blocks Conv(k3, stride s, pad 1) + InstanceNorm(affine=False) + ReLU, skip connections by concatenation,
up blocks ConvTranspose(k3, stride s, pad 1, output_padding s-1) + IN + ReLU (the top one conv only); sigmoid
soft Dice loss (MONAI's DiceLoss(sigmoid=True), mean over batch and channel), torch.optim.Adam, one step =
zero_grad + forward + loss + backward + Adam update. Random inputs and binary labels.

    python3 torch_step.py --dims 2 --shape 4,1,128,128 --channels 16,32,64 --strides 2,2 --threads 2
    python3 torch_step.py --arch classic --dims 3 --shape 1,1,64,64,64 --channels 8,16

--arch classic is the feasibility study's U-Net instead (see ClassicUNet below and bench/train/classic-unet.ts).

Prints one JSON line: {"torch": version, "threads": n, "median_ms": m, "times_ms": [...], "params": p}.
Only the Python standard library and torch are needed.
"""

import argparse
import json
import statistics
import time

import torch
from torch import nn


def conv_block(dims, cin, cout, stride, transposed=False, conv_only=False):
    conv_t = {2: (nn.Conv2d, nn.ConvTranspose2d), 3: (nn.Conv3d, nn.ConvTranspose3d)}[dims]
    norm_t = {2: nn.InstanceNorm2d, 3: nn.InstanceNorm3d}[dims]
    if transposed:
        conv = conv_t[1](cin, cout, 3, stride=stride, padding=1, output_padding=stride - 1)
    else:
        conv = conv_t[0](cin, cout, 3, stride=stride, padding=1)
    if conv_only:
        return conv
    return nn.Sequential(conv, norm_t(cout), nn.ReLU())


class Skip(nn.Module):
    def __init__(self, submodule):
        super().__init__()
        self.submodule = submodule

    def forward(self, x):
        return torch.cat([x, self.submodule(x)], dim=1)


def create_block(dims, inc, outc, channels, strides, is_top):
    c = channels[0]
    s = strides[0]
    if len(channels) > 2:
        sub = create_block(dims, c, c, channels[1:], strides[1:], False)
        upc = c * 2
    else:
        sub = conv_block(dims, c, channels[1], 1)
        upc = c + channels[1]
    down = conv_block(dims, inc, c, s)
    up = conv_block(dims, upc, outc, s, transposed=True, conv_only=is_top)
    return nn.Sequential(down, Skip(sub), up)


class ClassicUNet(nn.Module):
    """The study's U-Net (bench/train/classic-unet.ts): TwoConv (conv k3 no bias + IN + ReLU, twice) per level,
    MaxPool 2 down, ConvTranspose k2 s2 (no bias) to half the channels + concat + TwoConv up, 1x1 output conv."""

    def __init__(self, dims, inc, channels):
        super().__init__()
        conv_t = {2: nn.Conv2d, 3: nn.Conv3d}[dims]
        up_t = {2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}[dims]
        norm_t = {2: nn.InstanceNorm2d, 3: nn.InstanceNorm3d}[dims]
        pool_t = {2: nn.MaxPool2d, 3: nn.MaxPool3d}[dims]

        def two(cin, cout):
            return nn.Sequential(
                conv_t(cin, cout, 3, padding=1, bias=False),
                norm_t(cout),
                nn.ReLU(),
                conv_t(cout, cout, 3, padding=1, bias=False),
                norm_t(cout),
                nn.ReLU(),
            )

        self.enc = nn.ModuleList([two(inc, channels[0])])
        for i in range(1, len(channels)):
            self.enc.append(nn.Sequential(pool_t(2), two(channels[i - 1], channels[i])))
        self.ups = nn.ModuleList()
        self.decs = nn.ModuleList()
        for i in range(len(channels) - 1, 0, -1):
            self.ups.append(up_t(channels[i], channels[i] // 2, 2, stride=2, bias=False))
            self.decs.append(two(channels[i - 1] + channels[i] // 2, channels[i - 1]))
        self.final = conv_t(channels[0], 1, 1)

    def forward(self, x):
        skips = []
        for block in self.enc:
            x = block(x)
            skips.append(x)
        y = skips.pop()
        for up, dec in zip(self.ups, self.decs):
            y = dec(torch.cat([skips.pop(), up(y)], dim=1))
        return self.final(y)


def dice_loss(logits, target):
    p = torch.sigmoid(logits)
    axes = list(range(2, logits.dim()))
    inter = (p * target).sum(axes)
    denom = target.sum(axes) + p.sum(axes)
    return (1 - (2 * inter + 1e-5) / (denom + 1e-5)).mean()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dims", type=int, required=True)
    ap.add_argument("--shape", required=True)
    ap.add_argument("--channels", required=True)
    ap.add_argument("--strides", default="")
    ap.add_argument("--arch", choices=["monai", "classic"], default="monai")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--lr", type=float, default=1e-3)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    # labelgraph's Trainer flushes denormals too (set_denormal_as_zero).
    torch.set_flush_denormal(True)
    torch.manual_seed(0)
    shape = [int(v) for v in a.shape.split(",")]
    channels = [int(v) for v in a.channels.split(",")]
    if a.arch == "classic":
        net = ClassicUNet(a.dims, shape[1], channels)
    else:
        strides = [int(v) for v in a.strides.split(",")]
        net = create_block(a.dims, shape[1], 1, channels, strides, True)
    opt = torch.optim.Adam(net.parameters(), lr=a.lr)
    x = torch.randn(*shape)
    y = (torch.rand(shape[0], 1, *shape[2:]) > 0.5).float()

    def step():
        opt.zero_grad(set_to_none=True)
        loss = dice_loss(net(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(a.warmup):
        step()
    times = []
    for _ in range(a.runs):
        t0 = time.perf_counter()
        step()
        times.append((time.perf_counter() - t0) * 1000)
    print(
        json.dumps(
            {
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
                "median_ms": statistics.median(times),
                "times_ms": times,
                "params": sum(p.numel() for p in net.parameters()),
            }
        )
    )


if __name__ == "__main__":
    main()
