"""Train the small decoder-only LMs shipped in `examples/models/`, seeded, on one CPU thread, recording the time.

`induction-2l/`: a 2-layer Llama-style model (hidden 64, 4 query heads sharing 2 key/value heads, RoPE) trained on
`<bos> s s`, a random token sequence s (distinct tokens t0 … t63, 4–24 of them) repeated once. Only an induction
circuit predicts the second copy (a previous-token head in layer 0, an induction head in layer 1 that attends from the
current token to the token after its earlier occurrence); the first copy is unpredictable. `TRAINING.json` records the
settings, the wall time, the final loss, the held-out next-token accuracy of both halves, and how often the layer-1
heads' plain attention (eager forward, `output_attentions=True`) at the last position of a repeated prompt is
strongest on the token after the earlier occurrence of the last token.

`repo-lm-2l/` (optional, `--which text`): a 2-layer Llama-style LM (hidden 128, byte-level BPE of 1,024 pieces)
trained on the repository's own prose — README.md and the markdown cells of `nbs/*.ipynb` — for language examples;
every 10th block of 128 tokens is held out, and the weights of the step with the lowest held-out loss are kept
(it overfits the ~47k tokens within a few hundred steps). `TRAINING.json` records the corpus (files, characters, sha256), the
settings, the wall time and the held-out loss and next-token accuracy, and a greedy continuation.

    python examples/models/train_decoders.py                  # writes examples/models/induction-2l/ (~2.5 minutes)
    python examples/models/train_decoders.py --which text     # writes examples/models/repo-lm-2l/ (~3 minutes)
    python examples/models/train_decoders.py --check          # evaluates the saved induction model, trains nothing
"""
import argparse, hashlib, json, time
from pathlib import Path
import torch
import torch.nn.functional as F
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

HERE = Path(__file__).resolve().parent
OUT = HERE/'induction-2l'
SPECIALS = ['<pad>', '<bos>', '<unk>']  # ids 0, 1, 2
N_TOKENS = 64  # ordinary tokens t0 … t63, ids 3 … 66
MIN_LEN, MAX_LEN = 4, 24  # length of the random sequence s (the prompt is 1 + 2·len tokens)
SIZES = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
             max_position_embeddings=64)  # the model: 2 layers, GQA (2 query heads per key/value head)
TRAIN = dict(seed=0, steps=2000, batch_size=64, lr=3e-3, weight_decay=0.01, warmup=100)  # AdamW, cosine decay
EVAL = dict(seed=1, prompts=512)  # held-out sequences (another seed): accuracies and the attention check


def vocab() -> list[str]:
    "The token strings in id order."
    return SPECIALS + [f't{i}' for i in range(N_TOKENS)]


def make_tokenizer() -> PreTrainedTokenizerFast:
    "A whitespace WordLevel tokenizer over `vocab()` that puts <bos> in front, built in code."
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(vocab())}, unk_token='<unk>'))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.post_processor = processors.TemplateProcessing(single='<bos> $A', special_tokens=[('<bos>', 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token='<bos>', pad_token='<pad>', unk_token='<unk>',
                                   model_max_length=SIZES['max_position_embeddings'])


def make_model(seed:int) -> LlamaForCausalLM:
    "The untrained model, float32."
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(vocab()), pad_token_id=0, bos_token_id=1, eos_token_id=None, tie_word_embeddings=False,
                      **SIZES)
    return LlamaForCausalLM(cfg).float()


def batch(gen:torch.Generator, b:int, T:int) -> torch.Tensor:
    "(b, 1 + 2T) token ids: <bos> s s, s = T distinct ordinary tokens."
    s = torch.stack([torch.randperm(N_TOKENS, generator=gen)[:T] for _ in range(b)]) + len(SPECIALS)  # (b, T)
    return torch.cat([torch.full((b, 1), 1), s, s], 1)


def halves(logits:torch.Tensor, ids:torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    "Next-token correctness (b, T−1) of the first copy's and of the second copy's predictions within the copy."
    T = (ids.shape[1] - 1) // 2
    ok = logits[:, :-1].argmax(-1) == ids[:, 1:]  # (b, 2T): position i predicts token i + 1
    return ok[:, 1:T], ok[:, T + 1:2 * T]  # inputs s[0..T−2] of each copy predict s[1..T−1]


def train(model, cfg=TRAIN) -> dict:
    "AdamW on the next-token loss of every position; returns the loss curve's end."
    gen = torch.Generator().manual_seed(cfg['seed'])
    opt = torch.optim.AdamW(model.parameters(), lr=cfg['lr'], weight_decay=cfg['weight_decay'])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1, (s + 1) / cfg['warmup']) *
                                              0.5 * (1 + torch.cos(torch.tensor(torch.pi * s / cfg['steps'])).item()))
    model.train()
    losses = []
    for step in range(cfg['steps']):
        T = int(torch.randint(MIN_LEN, MAX_LEN + 1, (1,), generator=gen))
        ids = batch(gen, cfg['batch_size'], T)
        logits = model(ids, use_cache=False).logits  # (b, n, V)
        loss = F.cross_entropy(logits[:, :-1].flatten(0, 1), ids[:, 1:].flatten())
        opt.zero_grad(); loss.backward(); opt.step(); sched.step()
        losses.append(loss.item())
        if step % 250 == 0 or step == cfg['steps'] - 1: print(f'step {step:5d}  loss {loss.item():.4f}  T={T}', flush=True)
    model.eval()
    return dict(final_loss=sum(losses[-50:]) / 50)


@torch.no_grad()
def evaluate(model, cfg=EVAL) -> dict:
    "Held-out accuracy of both copies, and how often layer-1 attention at the last position is strongest on the token after the earlier occurrence."
    model.set_attn_implementation('eager')
    gen = torch.Generator().manual_seed(cfg['seed'])
    first, second, loss2, hits, head_hits, n = [], [], [], 0, torch.zeros(SIZES['num_attention_heads']), 0
    per_len = cfg['prompts'] // (MAX_LEN - MIN_LEN + 1) + 1
    for T in range(MIN_LEN, MAX_LEN + 1):
        ids = batch(gen, per_len, T)
        out = model(ids, output_attentions=True, use_cache=False)
        a, b = halves(out.logits, ids)
        first.append(a.float().mean()); second.append(b.float().mean())
        lp = out.logits[:, T + 1:2 * T].log_softmax(-1).gather(-1, ids[:, T + 2:2 * T + 1, None])
        loss2.append(-lp.mean())
        A = out.attentions[1][:, :, -1]  # (b, h, k): layer 1, the last query (token s[T−1], first seen at position T)
        target = T + 1  # the token right after that earlier occurrence
        hits += int((A.mean(1).argmax(-1) == target).sum())
        head_hits += (A.argmax(-1) == target).float().sum(0)
        n += ids.shape[0]
    model.set_attn_implementation('sdpa')
    return dict(heldout_prompts=n, accuracy_first_half=round(float(torch.stack(first).mean()), 4),
                accuracy_second_half=round(float(torch.stack(second).mean()), 4),
                loss_second_half=round(float(torch.stack(loss2).mean()), 4),
                chance_accuracy=round(1 / N_TOKENS, 4),
                layer1_mean_attention_argmax_is_token_after_earlier_occurrence=round(hits / n, 4),
                layer1_per_head_argmax_is_token_after_earlier_occurrence=[round(float(h) / n, 4) for h in head_hits])


ROOT = HERE.parents[1]
TEXT_OUT = HERE/'repo-lm-2l'
TEXT_SIZES = dict(hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                  max_position_embeddings=128, tie_word_embeddings=True)  # ≈ 0.43 M parameters
TEXT_VOCAB = 1024  # byte-level BPE pieces, specials included
TEXT_BLOCK = 128  # tokens per training sequence (<bos> + 127)
TEXT_HELDOUT = 10  # every 10th block is held out
TEXT_TRAIN = dict(seed=0, steps=600, batch_size=16, lr=3e-3, weight_decay=0.1, warmup=50)
TEXT_EVAL_EVERY = 25  # steps between held-out evaluations; the best one's weights are kept (early stopping)
TEXT_PROMPT = 'Self-attention attribution'  # the greedy continuation recorded in TRAINING.json


def repo_corpus() -> tuple[str, list[str]]:
    "README.md and the markdown cells of every notebook, in file order, and the files read."
    files = [ROOT/'README.md'] + sorted((ROOT/'nbs').glob('*.ipynb'))
    parts = []
    for f in files:
        if f.suffix == '.md': parts.append(f.read_text(encoding='utf-8')); continue
        cells = json.loads(f.read_text(encoding='utf-8'))['cells']
        parts += [''.join(c['source']) for c in cells if c['cell_type'] == 'markdown']
    return '\n\n'.join(parts), [str(f.relative_to(ROOT)) for f in files]


def text_tokenizer(text:str) -> PreTrainedTokenizerFast:
    "A byte-level BPE of `TEXT_VOCAB` pieces trained on `text`, <bos> put in front."
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(text.split('\n\n'), trainers.BpeTrainer(vocab_size=TEXT_VOCAB, special_tokens=['<pad>', '<bos>'],
                            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    tok.post_processor = processors.TemplateProcessing(single='<bos> $A', special_tokens=[('<bos>', 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token='<bos>', pad_token='<pad>',
                                   model_max_length=TEXT_SIZES['max_position_embeddings'])


def train_text(out:Path, cfg=TEXT_TRAIN) -> dict:
    "Train, evaluate and save the repository-text LM; returns its record."
    t0 = time.perf_counter()
    text, files = repo_corpus()
    tok = text_tokenizer(text)
    ids = torch.tensor(tok(text, add_special_tokens=False)['input_ids'])
    n = TEXT_BLOCK - 1
    blocks = torch.cat([torch.ones(len(ids) // n, 1, dtype=torch.long), ids[:len(ids) // n * n].view(-1, n)], 1)  # (B, 128)
    held = torch.arange(len(blocks)) % TEXT_HELDOUT == TEXT_HELDOUT - 1
    tr, ho = blocks[~held], blocks[held]
    torch.manual_seed(cfg['seed'])
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), pad_token_id=0, bos_token_id=1, eos_token_id=None, **TEXT_SIZES)).float()
    gen = torch.Generator().manual_seed(cfg['seed'])
    opt = torch.optim.AdamW(model.parameters(), lr=cfg['lr'], weight_decay=cfg['weight_decay'])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1, (s + 1) / cfg['warmup']) *
                                              0.5 * (1 + torch.cos(torch.tensor(torch.pi * s / cfg['steps'])).item()))
    def loss_acc(x):
        logits = model(x, use_cache=False).logits[:, :-1]
        return F.cross_entropy(logits.flatten(0, 1), x[:, 1:].flatten()), (logits.argmax(-1) == x[:, 1:]).float().mean()
    model.train(); losses, best = [], (float('inf'), -1, None)
    for step in range(cfg['steps']):
        x = tr[torch.randint(len(tr), (cfg['batch_size'],), generator=gen)]
        loss, _ = loss_acc(x)
        opt.zero_grad(); loss.backward(); opt.step(); sched.step(); losses.append(loss.item())
        if (step + 1) % TEXT_EVAL_EVERY == 0:
            model.eval()
            with torch.no_grad(): h = loss_acc(ho)[0].item()
            model.train()
            if h < best[0]: best = (h, step + 1, {k: v.clone() for k, v in model.state_dict().items()})
            if (step + 1) % 100 == 0: print(f'step {step + 1:5d}  loss {loss.item():.4f}  held-out {h:.4f}', flush=True)
    model.load_state_dict(best[2])
    model.eval()
    wall = time.perf_counter() - t0
    with torch.no_grad():
        hl, ha = loss_acc(ho)  # every held-out block at once
        p = tok(TEXT_PROMPT, return_tensors='pt')['input_ids']
        for _ in range(24): p = torch.cat([p, model(p, use_cache=False).logits[:, -1:].argmax(-1)], 1)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out); tok.save_pretrained(out); (out/'model.safetensors').chmod(0o644)
    rec = dict(script='examples/models/train_decoders.py --which text', corpus_files=files, corpus_chars=len(text),
               corpus_sha256=hashlib.sha256(text.encode()).hexdigest(), tokens=len(ids), train_blocks=len(tr),
               heldout_blocks=len(ho), block=TEXT_BLOCK, model='LlamaForCausalLM', sizes=TEXT_SIZES, vocab_size=len(tok),
               train=cfg, train_wall_seconds=round(wall, 1), threads=1, torch=torch.__version__, dtype='float32',
               best_step=best[1], train_loss_at_best=round(sum(losses[best[1] - 25:best[1]]) / 25, 4),
               heldout_loss=round(float(hl), 4), heldout_accuracy=round(float(ha), 4),
               greedy=tok.decode(p[0, 1:]))
    (out/'TRAINING.json').write_text(json.dumps(rec, indent=1) + '\n')
    return rec


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--out', default=str(OUT), help='folder to write the model, tokenizer and TRAINING.json into')
    p.add_argument('--steps', type=int, default=TRAIN['steps'], help='training steps')
    p.add_argument('--check', action='store_true', help='evaluate the saved model, train nothing')
    p.add_argument('--which', default='induction', choices=['induction', 'text'], help='which model to train')
    args = p.parse_args()
    torch.set_num_threads(1)
    if args.which == 'text':
        rec = train_text(Path(args.out) if args.out != str(OUT) else TEXT_OUT)
        print(json.dumps(rec, indent=1)); return
    out = Path(args.out)
    if args.check:
        model = AutoModelForCausalLM.from_pretrained(out).eval()
        print(json.dumps(evaluate(model), indent=1)); return
    cfg = TRAIN | dict(steps=args.steps)
    t0 = time.perf_counter()
    model = make_model(cfg['seed'])
    res = train(model, cfg)
    wall = time.perf_counter() - t0
    res |= evaluate(model)
    print(json.dumps(res, indent=1))
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    (out/'model.safetensors').chmod(0o644)
    make_tokenizer().save_pretrained(out)
    rec = dict(script='examples/models/train_decoders.py', task='<bos> s s: s = 4–24 distinct random tokens of t0…t63, repeated once',
               model='LlamaForCausalLM', sizes=SIZES, vocab_size=len(vocab()), train=cfg, eval=EVAL,
               train_wall_seconds=round(wall, 1), threads=1, torch=torch.__version__, dtype='float32') | res
    (out/'TRAINING.json').write_text(json.dumps(rec, indent=1) + '\n')
    tok = AutoTokenizer.from_pretrained(out)  # loads offline
    assert tok('t1 t2 t3')['input_ids'] == [1, 4, 5, 6]
    print(f'saved to {out} ({sum(f.stat().st_size for f in out.iterdir()) / 1e6:.2f} MB), trained in {wall:.0f} s')


if __name__ == '__main__':
    main()
