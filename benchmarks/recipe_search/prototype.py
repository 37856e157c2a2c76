"""The prototype used to choose the default recipe (see README.md beside it), kept as evidence.

A standalone script written before the package could train: ResNet-9 / AdamW / one-cycle on a MedMNIST
.npz, evaluated on the official validation split, or by 5-fold cross-validation on train+val (``--cv 5``)
so the test split is never read for choices (``--test 1`` exists but was not used for them). It is
compact experiment code, not library code. Example:

    MEDCLASS_DATA=../shared/data python benchmarks/recipe_search/prototype.py --ds breastmnist --cv 5 --seed 0
"""
import os
import argparse
import json
import math
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from sklearn.metrics import roc_auc_score

torch.set_num_threads(2)
p = argparse.ArgumentParser()
p.add_argument('--ds', default='breastmnist'); p.add_argument('--model', default='resnet9'); p.add_argument('--w', type=int, default=24)
p.add_argument('--epochs', type=int, default=30); p.add_argument('--bs', type=int, default=128); p.add_argument('--lr', type=float, default=2e-3)
p.add_argument('--wd', type=float, default=5e-4); p.add_argument('--opt', default='adamw'); p.add_argument('--sched', default='onecycle')
p.add_argument('--aug', default='affine'); p.add_argument('--shift', type=float, default=0.1); p.add_argument('--rot', type=float, default=10); p.add_argument('--scale', type=float, default=0.1)
p.add_argument('--flip', type=int, default=1); p.add_argument('--ls', type=float, default=0.0); p.add_argument('--ema', type=float, default=0)
p.add_argument('--tta', type=int, default=0); p.add_argument('--seed', type=int, default=0); p.add_argument('--test', type=int, default=0)
p.add_argument('--drop', type=float, default=0.0); p.add_argument('--cv', type=int, default=0); p.add_argument('--cw', default='none'); p.add_argument('--size', type=int, default=28)
a = p.parse_args()
torch.manual_seed(a.seed); np.random.seed(a.seed)
z = np.load(os.path.join(os.environ.get('MEDCLASS_DATA', '../shared/data'), f'{a.ds}.npz'))
def prep(x):
    t = torch.from_numpy(x).float().div(255).sub(0.5).div(0.5).unsqueeze(1)
    if a.size != 28: t = F.interpolate(t, size=a.size, mode='bilinear', align_corners=False)
    return t.contiguous(memory_format=torch.channels_last)
Xtr, ytr = prep(z['train_images']), torch.from_numpy(z['train_labels'][:,0].astype(np.int64))
Xva, yva = prep(z['val_images']), z['val_labels'][:,0]
Xte, yte = prep(z['test_images']), z['test_labels'][:,0]
def cbr(i,o,s=1): return nn.Sequential(nn.Conv2d(i,o,3,s,1,bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True))
class Res(nn.Module):
    def __init__(s, c): super().__init__(); s.b = nn.Sequential(cbr(c,c), cbr(c,c))
    def forward(s, x): return x + s.b(x)
def build():
    w = a.w
    if a.model == 'resnet9':
        return nn.Sequential(cbr(1,w), cbr(w,2*w), nn.MaxPool2d(2), Res(2*w), cbr(2*w,4*w), nn.MaxPool2d(2), cbr(4*w,8*w), nn.MaxPool2d(2), Res(8*w), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(a.drop), nn.Linear(8*w, 2))
    if a.model == 'vgg':
        return nn.Sequential(cbr(1,w), cbr(w,w), nn.MaxPool2d(2), cbr(w,2*w), cbr(2*w,2*w), nn.MaxPool2d(2), cbr(2*w,4*w), cbr(4*w,4*w), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(a.drop), nn.Linear(4*w,2))
    if a.model == 'resnet18':
        m = torchvision.models.resnet.ResNet(torchvision.models.resnet.BasicBlock, [2,2,2,2], num_classes=2, width_per_group=64)
        m.conv1 = nn.Conv2d(1, 64, 3, 1, 1, bias=False); m.maxpool = nn.Identity(); return m
@torch.no_grad()
def predict(model, X):
    model.eval(); out = []
    for i in range(0, len(X), 512):
        xb = X[i:i+512]; pr = F.softmax(model(xb), 1)
        if a.tta: pr = (pr + F.softmax(model(torch.flip(xb, [3])), 1))/2
        out.append(pr[:,1])
    return torch.cat(out).numpy()
def train_eval(Xtr, ytr, Xva, yva):
    m = build().to(memory_format=torch.channels_last)
    ema = torch.optim.swa_utils.AveragedModel(m, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(a.ema), use_buffers=True) if a.ema else None
    steps_per_epoch = math.ceil(len(Xtr)/a.bs); total = steps_per_epoch*a.epochs
    if a.opt == 'adamw': opt = torch.optim.AdamW(m.parameters(), lr=a.lr, weight_decay=a.wd)
    elif a.opt == 'adam': opt = torch.optim.Adam(m.parameters(), lr=a.lr)
    else: opt = torch.optim.SGD(m.parameters(), lr=a.lr, momentum=0.9, nesterov=True, weight_decay=a.wd)
    if a.sched == 'onecycle': sch = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=a.lr, total_steps=total, pct_start=0.2)
    elif a.sched == 'cosine': sch = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1, (s+1)/steps_per_epoch) * 0.5*(1+math.cos(math.pi*s/total)))
    elif a.sched == 'ref': sch = torch.optim.lr_scheduler.MultiStepLR(opt, [int(0.5*total), int(0.75*total)], 0.1)
    g = torch.Generator().manual_seed(a.seed)
    def augment(x):
        n = x.shape[0]
        if a.aug == 'none': return x
        ang = (torch.rand(n, generator=g)*2-1) * a.rot * math.pi/180
        sc = 1 + (torch.rand(n, generator=g)*2-1) * a.scale
        tx = (torch.rand(n, 2, generator=g)*2-1) * a.shift * 2
        fl = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0) if a.flip else torch.ones(n)
        cos, sin = torch.cos(ang)/sc, torch.sin(ang)/sc
        theta = torch.stack([torch.stack([cos*fl, -sin, tx[:,0]],1), torch.stack([sin*fl, cos, tx[:,1]],1)],1)
        grid = F.affine_grid(theta, x.shape, align_corners=False)
        return F.grid_sample(x, grid, mode='bilinear', padding_mode='border' if a.aug=='affine' else 'zeros', align_corners=False)
    if a.cw == 'balanced':
        cnt = torch.bincount(ytr, minlength=2).float(); wts = cnt.sum() / (2 * cnt)
    else:
        wts = None
    lf = nn.CrossEntropyLoss(weight=wts, label_smoothing=a.ls)
    best = (-1, None, None); hist=[]
    for ep in range(a.epochs):
        m.train(); perm = torch.randperm(len(Xtr), generator=g); tl = 0
        for i in range(0, len(Xtr), a.bs):
            idx = perm[i:i+a.bs]
            if len(idx) < 2: continue
            xb = augment(Xtr[idx]); yb = ytr[idx]
            loss = lf(m(xb), yb); opt.zero_grad(set_to_none=True); loss.backward(); opt.step(); sch.step(); tl += loss.item()*len(idx)
            if ema: ema.update_parameters(m)
        em = ema.module if ema else m
        pv = predict(em, Xva); auc = roc_auc_score(yva, pv); acc = ((pv > 0.5) == yva).mean()
        hist.append((auc, acc))
        if auc > best[0]: best = (auc, acc, ep, {k: v.clone() for k, v in em.state_dict().items()})
    return best, hist, m, ema
t0 = time.time()
if a.cv:
    from sklearn.model_selection import StratifiedKFold
    Xall = torch.cat([Xtr, Xva]); yall = np.concatenate([ytr.numpy(), yva])
    pooled = np.zeros(len(yall)); aucs=[]
    for k, (tr, va) in enumerate(StratifiedKFold(a.cv, shuffle=True, random_state=a.seed).split(np.zeros(len(yall)), yall)):
        best, hist, m, ema = train_eval(Xall[tr], torch.from_numpy(yall[tr]), Xall[va], yall[va])
        em = ema.module if ema else m
        pooled[va] = predict(em, Xall[va])  # last-epoch model
        aucs.append(hist[-1][0])
    dt = time.time()-t0
    print(json.dumps(dict(vars(a), time=round(dt,1), cv_auc=round(roc_auc_score(yall, pooled),4), cv_acc=round(float(((pooled>0.5)==yall).mean()),4), fold_auc_mean=round(float(np.mean(aucs)),4))), flush=True)
    raise SystemExit
best, hist, m, ema = train_eval(Xtr, ytr, Xva, yva)
dt = time.time()-t0
res = dict(vars(a), time=round(dt,1), best_val_auc=round(best[0],4), best_val_acc=round(float(best[1]),4), best_ep=best[2], last_val_auc=round(hist[-1][0],4), last_val_acc=round(float(hist[-1][1]),4),
           mean_last5_auc=round(float(np.mean([h[0] for h in hist[-5:]])),4))
if a.test:
    em = ema.module if ema else m; em.load_state_dict(best[3]); pt = predict(em, Xte)
    res.update(test_auc=round(roc_auc_score(yte, pt),4), test_acc=round(float(((pt>0.5)==yte).mean()),4))
print(json.dumps(res), flush=True)
