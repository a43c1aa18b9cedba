"""The pages' two languages: Chinese by default, English by a visible switch or ``Accept-Language``.

The chosen language comes from ``?lang=``, then the ``lang`` cookie the switch sets, then the
browser's ``Accept-Language``, and is Chinese otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

LANGS = ("zh", "en")
HTML_LANG = {"zh": "zh-CN", "en": "en"}
COOKIE = "lang"

BIZ_STEPS: dict[str, tuple[str, str]] = {
    "commissioning": ("建档（采收/屠宰）", "Registered (harvest or slaughter)"),
    "inspecting": ("检验检疫", "Inspected"),
    "sampling": ("抽样检测", "Sampled for testing"),
    "packing": ("包装", "Packed"),
    "repackaging": ("分装", "Repacked"),
    "shipping": ("发货", "Shipped"),
    "receiving": ("进场验收", "Received"),
    "storing": ("入库储存", "Stored"),
    "transporting": ("运输", "Transported"),
    "holding": ("暂扣", "Held"),
    "retail_selling": ("零售", "Sold at retail"),
    "destroying": ("销毁", "Destroyed"),
    "dispensing": ("调剂发药", "Dispensed"),
    "accepting": ("验收接收", "Accepted"),
    "arriving": ("到达", "Arrived"),
    "assembling": ("组装", "Assembled"),
    "collecting": ("收集", "Collected"),
    "consigning": ("托运", "Consigned"),
    "decommissioning": ("注销", "Decommissioned"),
    "departing": ("离场", "Departed"),
    "disassembling": ("分割", "Cut up"),
    "encoding": ("赋码", "Coded"),
    "loading": ("装车", "Loaded"),
    "picking": ("拣货", "Picked"),
    "removing": ("移出", "Removed"),
    "stocking": ("上架", "Stocked"),
    "stock_taking": ("盘点", "Stock taken"),
    "unloading": ("卸货", "Unloaded"),
    "unpacking": ("拆包", "Unpacked"),
    "void_shipping": ("取消发货", "Shipment voided"),
    "other": ("其他", "Other"),
}

DISPOSITIONS: dict[str, tuple[str, str]] = {
    "active": ("在售/在库", "Active"),
    "in_transit": ("运输中", "In transit"),
    "conformant": ("合格", "Passed"),
    "non_conformant": ("不合格", "Failed"),
    "recalled": ("已召回", "Recalled"),
    "retail_sold": ("已售出", "Sold"),
    "destroyed": ("已销毁", "Destroyed"),
    "expired": ("已过期", "Expired"),
    "available": ("可用", "Available"),
    "damaged": ("破损", "Damaged"),
    "dispensed": ("已发药", "Dispensed"),
    "disposed": ("已处置", "Disposed"),
    "inactive": ("停用", "Inactive"),
    "in_progress": ("处理中", "In progress"),
    "returned": ("已退回", "Returned"),
    "reserved": ("已预留", "Reserved"),
    "sellable_accessible": ("可售", "On sale"),
    "stolen": ("被盗", "Stolen"),
    "unknown": ("未知", "Unknown"),
}

STRINGS: dict[str, tuple[str, str]] = {
    "site": ("肉菜药品追溯查询", "Food & drug trace lookup"),
    "switch": ("English", "中文"),
    "lookup_title": ("查询追溯码", "Look up a trace code"),
    "lookup_help": (
        "输入小票或标签上的 20 位追溯码（可带空格）。",
        "Type the 20-digit code from the receipt or label (spaces are fine).",
    ),
    "code_label": ("追溯码", "Trace code"),
    "lookup_button": ("查询", "Look up"),
    "product": ("产品", "Product"),
    "quantity": ("数量", "Quantity"),
    "produced_on": ("生产/屠宰日期", "Produced on"),
    "expires_on": ("保质期至", "Use by"),
    "origin": ("产地", "Origin"),
    "journey": ("流通环节", "Journey"),
    "inspections": ("检验检疫", "Inspections"),
    "certificates": ("证明与票据", "Certificates and vouchers"),
    "no_certificates": ("无证明记录", "No certificates recorded"),
    "vendor": ("销售摊位", "Sold by"),
    "stall": ("摊位号", "Stall"),
    "sold_at": ("销售网点", "Where it is sold"),
    "recorded_at": ("登记时间", "Recorded"),
    "request_id": ("请求编号", "Request id"),
    "recent_checkpoints": ("最近的检查点", "Recent checkpoints"),
    "origin_name": ("日志名称", "Log origin"),
    "credit_pending": ("信用评价：暂未评定", "Credit rating: not rated yet"),
    "recalled_title": ("此批次已召回 · 请勿食用", "This batch is RECALLED · do not eat or use it"),
    "recalled_text": (
        "如已购买，请停止食用并联系摊主或拨打 12315。",
        "If you bought it, stop using it and contact the seller or call 12315.",
    ),
    "held_title": ("此批次被暂扣或检验不合格", "This batch is ON HOLD or failed a test"),
    "held_text": ("监管部门正在处理，请暂勿食用。", "Regulators are dealing with it; do not eat or use it for now."),
    "verify_checking": ("正在手机上核验记录……", "Checking the records on this phone…"),
    "verify_ok": ("已核验：{n} 条记录与签名日志一致", "Verified: {n} records match the signed log"),
    "verify_fail": ("核验失败：记录与签名日志不一致", "NOT verified: the records do not match the signed log"),
    "verify_pending": ("记录刚刚写入，正在等待日志收录", "Just recorded; waiting for the log to include it"),
    "verify_unsupported": ("此浏览器无法核验签名", "This browser cannot check the signatures"),
    "verify_nojs": ("开启 JavaScript 后可在手机上核验记录", "Turn on JavaScript to check the records on this phone"),
    "verify_detail": ("核验方法", "How this is checked"),
    "verify_explain": (
        "本页在您的手机上重新计算每条记录的哈希链，检查其在公开日志中的收录证明（Merkle 路径），并用日志公钥核对签名。",
        "This page recomputes each record's hash chain on your phone, checks "
        "its inclusion proof (Merkle path) in the public log, and checks the log's signature with its "
        "public key.",
    ),
    "log_key": ("日志公钥", "Log key"),
    "step": ("环节", "Step"),
    "time": ("时间", "Time"),
    "result": ("结果", "Result"),
    "node": ("节点", "Node"),
    "declared_wrong": ("（已更正）", "(corrected)"),
    "unknown_title": ("未找到此追溯码", "We could not find this code"),
    "unknown_text": (
        "请核对小票上的号码后重新输入。新售出的商品可能需要几分钟才能查到。",
        "Check the number on the receipt and try again. Items sold minutes ago can take a little while to appear.",
    ),
    "invalid_title": ("追溯码有误", "That code is not right"),
    "syncing_title": ("记录正在同步", "Records are syncing"),
    "syncing_text": (
        "此追溯码属于 {stall}（{market}）。摊位的扫码设备离线时先打印小票，联网后记录会自动上传。请稍后再查。",
        "This code belongs to {stall} at {market}. The stall's station printed it while offline; its "
        "records upload when it reconnects. Please check again later.",
    ),
    "last_sync": ("上次同步", "Last synced"),
    "digits": ("已输入 {n}/20 位", "{n} of 20 digits"),
    "check_ok": ("校验位正确", "Check digit OK"),
    "check_bad": ("校验位不符：可能输错或颠倒了数字", "Check digit wrong: a digit was mistyped or swapped"),
    "code_chars": ("追溯码只含数字", "A trace code has digits only"),
    "home": ("首页", "Home"),
    "footer": (
        "数据来自肉菜流通追溯体系；价格和买家信息不公开。",
        "Data from the meat and vegetable traceability system; prices and buyers are never shown to the public.",
    ),
    # console
    "console": ("监管控制台", "Regulator console"),
    "sign_in": ("登录", "Sign in"),
    "sign_out": ("退出", "Sign out"),
    "name": ("账号", "Account name"),
    "password": ("密码", "Password"),
    "search": ("检索", "Search"),
    "search_title": ("追溯检索", "Trace search"),
    "enterprise": ("企业（名称或统一社会信用代码）", "Enterprise (name or USCC)"),
    "product_q": ("产品（名称或商品编码）", "Product (name or goods code)"),
    "node_q": ("节点（名称或节点编码）", "Node (name or node code)"),
    "date_from": ("起始日期", "From date"),
    "date_to": ("截止日期", "To date"),
    "results": ("检索结果", "Results"),
    "no_results": ("没有符合条件的批次", "No batch matches"),
    "batch_record": ("批次完整记录", "Batch record"),
    "export_csv": ("导出 CSV", "Export CSV"),
    "export_json": ("导出 JSON", "Export JSON"),
    "register": ("企业名录", "Enterprise register"),
    "log_status": ("日志状态", "Log status"),
    "events": ("记录数", "Events"),
    "nodes": ("节点数", "Nodes"),
    "credit": ("信用评价", "Credit rating"),
    "not_rated": ("暂未评定", "Not rated yet"),
    "latest_checkpoint": ("最新签名检查点", "Latest signed checkpoint"),
    "tree_size": ("日志大小", "Tree size"),
    "root": ("根哈希", "Root hash"),
    "witnesses": ("见证方", "Witnesses"),
    "cosigned": ("见证方联署", "Witness co-signatures"),
    "backlog": ("待收录记录", "Waiting to enter the log"),
    "last_audit": ("最近审计", "Last audit"),
    "not_recorded": ("尚无记录", "Not recorded yet"),
    "commercial": ("商业信息", "Commercial details"),
    "status_ok": ("正常", "No recall or hold"),
    "recalls": ("召回", "Recalls"),
    "anomalies": ("异常", "Anomalies"),
    "issue_recall": ("发布召回", "Issue a recall"),
    "recall_level": ("召回级别", "Recall level"),
    "recall_reason": ("召回原因", "Reason"),
    "recall_scope": ("范围（可不填）", "Scope (optional)"),
    "recall_issued": ("召回已发布", "Recall issued"),
    "affected_batches": ("受影响批次", "Batches affected"),
    "affected_places": ("已到达的节点", "Places it reached"),
    "affected_enterprises": ("涉及企业", "Enterprises affected"),
    "genealogy": ("来源与去向", "Genealogy"),
    "backward": ("来源（追溯到产地）", "Where it came from (back to origins)"),
    "forward": ("去向（追踪到每个摊位）", "Where it went (forward to every stall)"),
    "depth": ("层级", "Depth"),
    "kind": ("类型", "Kind"),
    "all": ("全部", "All"),
    "detected": ("发现时间", "Detected"),
    "detail": ("详情", "Detail"),
    "score": ("得分", "Score"),
    "factor": ("因素", "Factor"),
    "penalty": ("扣分", "Penalty"),
    "history": ("历史", "History"),
    "no_anomalies": ("没有异常", "No anomalies"),
    "no_recalls": ("尚无召回", "No recalls yet"),
    # vendor
    "vendor_title": ("摊位记录", "Stall records"),
    "device_credential": ("摊位扫码设备凭证", "Stall scanner credential"),
    "record": ("记录", "Record"),
    "receive": ("进货验收", "Receive"),
    "sell": ("售出", "Sell"),
    "scan_camera": ("用摄像头扫码", "Scan with camera"),
    "photo": ("或拍照上传条码", "Or take a photo of the code"),
    "weight": ("重量（千克，可不填）", "Weight in kg (optional)"),
    "receipt": ("追溯小票", "Trace receipt"),
    "print": ("打印", "Print"),
    "recorded": ("已记录", "Recorded"),
    "again": ("继续记录", "Record another"),
}


@dataclass(frozen=True, slots=True)
class Translator:
    """Strings and names in one language, for templates (``t('key')``, ``pick(zh, en)``)."""

    lang: str

    @property
    def html_lang(self) -> str:
        return HTML_LANG[self.lang]

    @property
    def other(self) -> str:
        return "en" if self.lang == "zh" else "zh"

    def __call__(self, key: str, **values: Any) -> str:
        pair = STRINGS[key]
        text = pair[0] if self.lang == "zh" else pair[1]
        return text.format(**values) if values else text

    def both(self, key: str) -> dict[str, str]:
        return {"zh": STRINGS[key][0], "en": STRINGS[key][1]}

    def pick(self, zh: str | None, en: str | None) -> str:
        """The English name when English is chosen and there is one; the Chinese name otherwise."""
        if self.lang == "en" and en:
            return en
        return zh or en or ""

    def step(self, biz_step: str | None) -> str:
        if not biz_step:
            return ""
        pair = BIZ_STEPS.get(biz_step)
        return biz_step.replace("_", " ") if pair is None else self.pick(*pair)

    def disposition(self, disposition: str | None) -> str:
        if not disposition:
            return ""
        pair = DISPOSITIONS.get(disposition)
        return disposition.replace("_", " ") if pair is None else self.pick(*pair)


def _accept_language(header: str) -> str | None:
    best: tuple[float, str] | None = None
    for part in header.split(","):
        tag, _, params = part.strip().partition(";")
        primary = tag.strip().lower().split("-")[0]
        if primary not in LANGS:
            continue
        q = 1.0
        for p in params.split(";"):
            k, _, v = p.strip().partition("=")
            if k == "q":
                try:
                    q = float(v)
                except ValueError:
                    q = 0.0
        if q > 0 and (best is None or q > best[0]):
            best = (q, primary)
    return best[1] if best else None


def choose(request: web.Request) -> Translator:
    """The reader's language for this request."""
    for candidate in (request.query.get("lang"), request.cookies.get(COOKIE)):
        if candidate in LANGS:
            return Translator(candidate)
    return Translator(_accept_language(request.headers.get("Accept-Language", "")) or "zh")
