"""Every sentence the station says to a person, in Chinese first and English.

One entry per message: ``key → (中文, English)``, with ``{name}`` fields. :func:`say` renders a message in
the station's language setting (``trace-scan language``): ``zh`` Chinese only, ``en`` English only, or
``both`` (the default) Chinese with the English after a middle dot. Refusals say what to do next.
"""

from __future__ import annotations

from typing import Any, Literal

Language = Literal["zh", "en", "both"]
LANGUAGES: tuple[str, ...] = ("both", "zh", "en")

WORDS: dict[str, tuple[str, str] | tuple[str, str, str]] = {
    # the counter
    "ready": ("{mode_zh}：请扫码或称重，Ctrl-D 结束", "{mode} mode: scan, or weigh; Ctrl-D to stop"),
    "mode.receive": ("进货", "receive"),
    "mode.ship": ("出货", "ship"),
    "mode.inspect": ("检测", "inspect"),
    "mode.commission": ("赋码", "commission"),
    "mode.sell": ("销售", "sell"),
    "selling_from": (
        "正在销售：{product}，批次 {code}{origin_zh}",
        "selling {product} from batch {code}{origin_en}",
    ),
    "sold": (
        "✓ 已售 {product} {weight}{amount} · 追溯码 {code}",
        "✓ sold {product} {weight_en}{amount_en} · code {code}",
        "✓ 已售 sold {product} {weight}{amount} · 追溯码 {code}",
    ),
    "new_batch": ("✓ 新批次 {product} {code}", "✓ new batch {product} {code}"),
    "recorded_step": ("✓ {step} {code}", "✓ {step_en} {code}"),
    "quantity_held": ("数量 {quantity}：请接着扫码", "quantity {quantity}: scan the code next"),
    "need_weight": ("请称重：销售需要重量（如 1.25kg 或 2.5斤）", "a sale needs a weight (e.g. 1.25kg or 2.5斤)"),
    "need_product": (
        "请先选择商品：输入名称或拼音首字母（如 猪肉 或 zr），或扫描要销售的批次",
        "choose the goods first: type the name or its pinyin initials (猪肉 or zr), or scan the batch",
    ),
    "need_source": (
        "请先扫描要销售的批次（整猪、整箱的追溯码）",
        "scan the batch you are selling from first (the carcass's or crate's code)",
    ),
    "no_trace_code": (
        "此条码不含本平台追溯码：请先赋码（赋码模式）",
        "this barcode carries no trace code of ours: commission it first (commission mode)",
    ),
    "commission_needs": (
        "赋码模式下请称重，或扫描商品条码（GTIN）、药品追溯码",
        "in commission mode weigh, or scan a product barcode (GTIN) or a drug code",
    ),
    "out_of_codes": (
        "追溯码已用完：请连接网络，站点会自动申领新的追溯码",
        "no trace codes left: connect to the network and the station leases more",
    ),
    "printed_to": ("  → 已打印 {where}", "  → printed {where}", "  → 已打印 printed {where}"),
    "print_failed": (
        "已记录，但打印失败（{error}）：检查打印机后输入 重打 {code}",
        "recorded, but printing failed ({error}): check the printer, then reprint {code}",
    ),
    "product_chosen": ("商品：{label}", "goods: {label}"),
    "product_choose_one": (
        "找到多个商品，请输入序号选择（如 #1）：",
        "several goods match; type the number to choose (e.g. #1):",
    ),
    "product_not_found": (
        "没有找到“{query}”：换个名称或拼音首字母再试（商品表 {count} 种，上次同步 {synced}）",
        "nothing matches {query!r}: try another name or initials ({count} goods, last synced {synced})",
    ),
    "product_changed_source_cleared": (
        "已改选 {product}：请扫描该商品的批次",
        "now selling {product}: scan a batch of it",
    ),
    "price_set": ("单价 {price} 元/{unit}（{product}，已记住）", "price {price} yuan/{unit} ({product}, remembered)"),
    "no_price": ("未设单价：输入如 单价 16/斤", "no price set: type e.g. 单价 16/斤"),
    "tare_set": ("已去皮 {tare} kg", "tare set to {tare} kg"),
    "tare_cleared": ("已清除皮重", "tare cleared"),
    "scale_unstable": ("重量未稳定，请稍候再称", "the weight is not stable yet: weigh again"),
    "unrecognised": (
        "无法识别：应为追溯码、二维码、条码、重量（如 1.25kg、2斤），或商品名称",
        "not recognised: expected a trace code, a QR code, a barcode, a weight (1.25kg, 2斤) or goods",
    ),
    "nothing_to_reprint": ("没有 {code} 的打印记录", "nothing was printed for {code}"),
    # uploads
    "upload_failed": ("… 上传失败（{error}），{delay} 秒后重试", "… upload failed ({error}); retrying in {delay} s"),
    "upload_refused": (
        "✗ 服务器拒收 {kind} {code}：{error}",
        "✗ the server refused {kind} {code}: {error}",
    ),
    "upload_pending": (
        "还有 {count} 条记录未上传：联网后会自动上传",
        "{count} records are still queued: they upload by themselves when the network is back",
    ),
    "uploaded": (
        "已上传 {acknowledged} 条（其中 {replayed} 条此前已上传），拒收 {refused}，重试 {retries} 次；待上传 {pending}",
        "uploaded {acknowledged} ({replayed} already recorded), refused {refused}, retries {retries}; "
        "{pending} waiting",
    ),
    # enrolment
    "enrolled": (
        "✓ 已绑定：{node}（{code}）{stall}；已申领 {codes} 个追溯码供离线使用",
        "✓ enrolled at {node} ({code}){stall}; {codes} trace codes leased for offline use",
    ),
    "not_enrolled": (
        "本站点尚未绑定：请运行 trace-scan enrol，并扫描管理员给的绑定二维码",
        "this station is not enrolled: run trace-scan enrol and scan the enrolment QR code",
    ),
    # status
    "status.server": ("服务器", "server"),
    "status.station": ("站点", "station"),
    "status.queue": ("待上传", "queued"),
    "status.oldest": ("最早一条", "oldest"),
    "status.uploaded": ("已上传", "uploaded"),
    "status.last_sync": ("上次同步成功", "last good sync"),
    "status.never": ("从未", "never"),
    "status.codes": ("剩余追溯码", "codes left"),
    "status.error": ("连接问题", "connection problem"),
    "status.refused": ("服务器拒收", "refused"),
    "status.kept": ("（已保留在本机）", "(kept on this station)"),
    "status.product": ("当前商品", "goods"),
    "status.printers": ("打印机", "printers"),
    "status.print_failed": ("打印失败", "print failed"),
    "status.scale": ("电子秤", "scale"),
    "status.none": ("无", "none"),
    "status.all_good": ("一切正常", "all good"),
}


def say(key: str, language: str = "both", **fields: Any) -> str:
    """The message ``key`` with its fields filled in, in ``language`` (zh, en or both).

    An entry may carry a third, shorter form for ``both``, where repeating the whole sentence in English
    would only repeat its numbers and names.
    """
    entry = WORDS[key]
    if language == "zh":
        return entry[0].format(**fields)
    if language == "en":
        return entry[1].format(**fields)
    if len(entry) == 3:
        return entry[2].format(**fields)
    return f"{entry[0].format(**fields)} · {entry[1].format(**fields)}"


def both(zh: str, en: str, language: str = "both") -> str:
    """A message made elsewhere (a parser's reason) in the station's language."""
    if language == "zh":
        return zh
    if language == "en":
        return en
    return f"{zh} · {en}"


_REFUSALS: tuple[tuple[str, str, str], ...] = (
    # (what the server's answer says, 中文, English): the first that matches explains it.
    ("recalled", "请勿销售：该批次已召回。已售出的请联系市场管理员", "do not sell: the batch is recalled"),
    ("on hold", "请勿销售：该批次检测不合格，已暂扣", "do not sell: the batch is on hold after a failed test"),
    ("was revoked", "站点密钥已被撤销：请联系市场管理员重新绑定", "the station's key was revoked: enrol again"),
    ("unauthorized", "站点身份未被服务器接受：请检查时钟，或重新绑定", "the server does not accept the station"),
    ("forbidden", "本站点无权记录这条数据", "this station may not record this"),
    ("not_found", "服务器上没有这个批次", "the server has no such batch"),
    ("unknown_reference", "服务器上没有这个商品或批次：请更新商品表后重试", "unknown goods or batch"),
    ("already_exists", "这个追溯码已被使用", "this trace code is used already"),
    ("invalid", "数据不符合要求", "the record was refused as invalid"),
)


def server_refusal(stored: str, language: str = "both") -> str:
    """A refusal the server gave (``"409 conflict: traceCode: batch … recalled since …"``), explained.

    The server's own words follow in brackets, for the market's administrator.
    """
    lowered = stored.lower()
    for needle, zh, en in _REFUSALS:
        if needle in lowered:
            return f"{both(zh, en, language)}（{stored}）"
    return stored
