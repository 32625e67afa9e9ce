"""The console's words in Simplified Chinese (the default) and English.

The language is the `console_lang` cookie (set by the switch in the page header); anything else is zh-CN.
Every key exists in both languages (tests/console/test_i18n.py checks every key the templates use).
"""
from __future__ import annotations

from fastapi import Request

LANGUAGES = ("zh", "en")
LANG_COOKIE = "console_lang"
HTML_LANG = {"zh": "zh-CN", "en": "en"}

MESSAGES: dict[str, tuple[str, str]] = {
    # frame
    "app.title": ("12345 热线工作台", "12345 hotline console"),
    "nav.queue": ("工单", "Tickets"),
    "nav.review": ("通话复核", "Call review"),
    "nav.live": ("实时通话", "Live calls"),
    "nav.statistics": ("统计", "Statistics"),
    "nav.flows": ("呼叫流程", "Call flows"),
    "nav.sign_out": ("退出", "Sign out"),
    "nav.language": ("English", "中文"),
    "role.operator": ("话务员", "operator"),
    "role.admin": ("管理员", "administrator"),
    "role.unit_staff": ("成员单位", "unit staff"),
    # sign-in
    "signin.title": ("登录", "Sign in"),
    "signin.token": ("访问令牌", "Access token"),
    "signin.hint": ("请输入管理员发放的 API 令牌。", "Enter the API token an administrator issued to you."),
    "signin.submit": ("登录", "Sign in"),
    "signin.wrong": ("令牌无效。", "That token is not valid."),
    "notfound.text": ("没有这个工单。", "No such ticket."),
    # ticket fields
    "field.number": ("工单号", "Number"),
    "field.status": ("状态", "Status"),
    "field.level": ("响应级别", "Level"),
    "field.type": ("类型", "Type"),
    "field.topic": ("主题", "Topic"),
    "field.unit": ("承办单位", "Unit"),
    "field.caller_name": ("来电人", "Caller"),
    "field.phone": ("电话", "Phone"),
    "field.address": ("地址", "Address"),
    "field.content": ("诉求内容", "Request"),
    "field.call_time": ("来电时间", "Call time"),
    "field.language": ("语言", "Language"),
    "field.deadline": ("办理时限", "Deadline"),
    "field.created": ("创建", "Created"),
    "field.confidential": ("保密", "Confidential"),
    "field.callback_result": ("回访结果", "Callback result"),
    "field.note": ("说明", "Note"),
    "field.hidden": ("（保密，已隐藏）", "(confidential, hidden)"),
    "field.none": ("—", "—"),
    # queue
    "queue.title": ("工单队列", "Ticket queue"),
    "queue.search": ("搜索内容、姓名、地址、工单号或电话", "Search content, name, address, number or phone"),
    "queue.any": ("全部", "any"),
    "queue.overdue": ("超期", "Overdue"),
    "queue.overdue_yes": ("仅超期", "overdue only"),
    "queue.overdue_no": ("未超期", "not overdue"),
    "queue.filter": ("筛选", "Filter"),
    "queue.reset": ("清除", "Clear"),
    "queue.total": ("共 {total} 件", "{total} tickets"),
    "queue.empty": ("没有符合条件的工单。", "No ticket matches."),
    "queue.prev": ("上一页", "Previous"),
    "queue.next": ("下一页", "Next"),
    "queue.page": ("第 {page} / {pages} 页", "Page {page} of {pages}"),
    "queue.draft": ("草稿", "draft"),
    "queue.incomplete": ("未完成", "incomplete"),
    "deadline.settled": ("已办结", "settled"),
    "deadline.none": ("无时限", "no deadline"),
    "deadline.left": ("剩余 {time}", "{time} left"),
    "deadline.over": ("超期 {time}", "overdue by {time}"),
    "deadline.late": ("曾超期", "was late"),
    "unit.d": ("天", " d"),
    "unit.h": ("小时", " h"),
    "unit.m": ("分", " min"),
    # review queue
    "review.title": ("待复核通话", "Calls to review"),
    "review.hint": ("按需要排序：未完成的草稿、识别置信度低的转写、尚未录入的录音回答。",
                    "By need: incomplete drafts, low-confidence transcripts, recorded answers nobody typed yet."),
    "review.reason": ("原因", "Reason"),
    "review.empty": ("没有待复核的通话。", "No call waits for review."),
    "reason.incomplete_draft": ("未完成的草稿", "incomplete draft"),
    "reason.low_confidence": ("识别置信度低", "low-confidence transcript"),
    "reason.untyped_recording": ("录音尚未录入", "recorded answer not typed"),
    "review.confidence": ("置信度", "Confidence"),
    # ticket page
    "ticket.title": ("工单 {number}", "Ticket {number}"),
    "ticket.caller": ("来电人信息", "Caller"),
    "ticket.history": ("处理记录", "History"),
    "ticket.recordings": ("录音与转写", "Recordings and transcript"),
    "ticket.no_recordings": ("没有录音。", "No recordings."),
    "ticket.deleted": ("录音已按保存期限删除。", "Audio deleted by the retention policy."),
    "ticket.transcript": ("转写", "Transcript"),
    "ticket.no_transcript": ("暂无转写（该语言没有识别模型，或转写仍在进行）。",
                             "No transcript (no speech model for the language, or still transcribing)."),
    "ticket.keys": ("空格 播放/暂停 · ←/→ 五秒 · 单击词语跳转 · 双击词语更正",
                    "space play/pause · ←/→ five seconds · click a word to seek · double-click to correct"),
    "ticket.legend": ("底色越深，识别越不确定；带下划线的词已更正。",
                      "The darker a word, the less sure the recogniser; underlined words were corrected."),
    "ticket.selection": ("选中的文字（或全部更正后的转写）", "Selected text (or the whole corrected transcript)"),
    "ticket.copy_to": ("复制到", "Copy to"),
    "ticket.classify": ("分类", "Classification"),
    "ticket.save": ("保存", "Save"),
    "ticket.actions": ("办理", "Actions"),
    "ticket.no_actions": ("当前状态下没有可执行的操作。", "No action is possible in this status."),
    "ticket.mark_reviewed": ("标记为已复核", "Mark reviewed"),
    "ticket.reviewed": ("已复核 {at}", "reviewed {at}"),
    "ticket.original": ("原文", "recognised"),
    "ticket.corrected_by": ("更正", "corrected by"),
    "ticket.incomplete": ("未完成：{reason}", "Incomplete: {reason}"),
    "ticket.saved": ("已保存。", "Saved."),
    "rec.call": ("整通电话", "Whole call"),
    "rec.request": ("诉求", "Request"),
    "rec.name": ("姓名", "Name"),
    "rec.address": ("地址", "Address"),
    # actions
    "action.submit": ("提交", "Submit"),
    "action.answer_directly": ("直接答复", "Answer directly"),
    "action.reject": ("不予受理", "Not accept"),
    "action.dispatch": ("转办", "Dispatch"),
    "action.sign": ("签收", "Sign for"),
    "action.start": ("开始办理", "Start"),
    "action.reply": ("回复", "Reply"),
    "action.callback": ("回访", "Callback"),
    "action.close": ("办结", "Close"),
    "action.archive": ("归档", "Archive"),
    "action.escalate": ("呈报", "Escalate"),
    "action.return_misrouted": ("退回", "Return (misrouted)"),
    "action.reopen": ("重办", "Reopen"),
    "history.create": ("创建", "created"),
    "history.edit": ("修改", "edited"),
    "history.override_level": ("调整级别", "level changed"),
    "history.incomplete": ("未完成", "incomplete"),
    "history.listen": ("收听录音", "listened"),
    "history.review": ("复核", "reviewed"),
    "history.retention": ("删除录音（保存期限）", "audio deleted (retention)"),
    "history.remind": ("催办", "reminder"),
    "history.supervise": ("督办", "supervision"),
    "history.callback_due": ("回访到期", "callback due"),
    # statuses
    "status.draft": ("草稿", "draft"),
    "status.received": ("已受理", "received"),
    "status.answered": ("已答复", "answered"),
    "status.not_accepted": ("不予受理", "not accepted"),
    "status.dispatched": ("已转办", "dispatched"),
    "status.signed": ("已签收", "signed"),
    "status.in_progress": ("办理中", "in progress"),
    "status.replied": ("已回复", "replied"),
    "status.callback_done": ("已回访", "callback done"),
    "status.closed": ("已办结", "closed"),
    "status.archived": ("已归档", "archived"),
    "status.escalated": ("已呈报", "escalated"),
    # live calls
    "live.title": ("实时通话", "Live calls"),
    "live.none": ("当前没有通话。", "No call in progress."),
    "live.caller": ("主叫", "Caller"),
    "live.elapsed": ("时长", "Elapsed"),
    "live.node": ("当前节点", "Flow node"),
    "live.heard": ("识别内容", "Heard"),
    "live.seat": ("我的坐席号", "My seat"),
    "live.pick_up": ("接听", "Pick up"),
    "live.picked": ("已转接到 {seat}", "transferring to {seat}"),
    "live.connection": ("实时连接已断开，正在重连…", "Live connection lost, reconnecting…"),
    # statistics
    "stats.title": ("统计", "Statistics"),
    "stats.period": ("统计期间", "Period"),
    "stats.days": ("最近 {days} 天", "last {days} days"),
    "stats.received": ("受理", "Received"),
    "stats.response_rate": ("及时响应率", "Response rate"),
    "stats.resolution_rate": ("解决率", "Resolution rate"),
    "stats.satisfaction_rate": ("满意率", "Satisfaction rate"),
    "stats.overdue": ("超期未办", "Overdue now"),
    "stats.overdue_by_unit": ("各单位超期", "Overdue by unit"),
    "stats.hot_topics": ("热点问题", "Hot topics"),
    "stats.by_type": ("按类型", "By type"),
    "stats.calls_per_hour": ("每小时来电（按来电时刻，北京时间）", "Calls per hour of day (Beijing time)"),
    "stats.by_unit": ("各单位三率", "Rates by unit"),
    "stats.no_data": ("无数据", "no data"),
    # flows
    "flows.title": ("呼叫流程", "Call flows"),
    "flows.version": ("版本", "Version"),
    "flows.modified": ("修改时间", "Modified"),
    "flows.nodes": ("节点", "nodes"),
    "flows.broken": ("流程文件有误（通话仍使用上一个正确版本）：", "The flow file has mistakes (calls keep the last good version):"),
    "flows.in_use": ("正在使用", "answering calls"),
}


def language_of(request: Request) -> str:
    lang = request.cookies.get(LANG_COOKIE, "zh")
    return lang if lang in LANGUAGES else "zh"


def translate(key: str, lang: str, **values: object) -> str:
    """The text of `key` in `lang` with `{name}` placeholders filled; an unknown key is a programming error."""
    text = MESSAGES[key][LANGUAGES.index(lang)]
    return text.format(**values) if values else text


def known(key: str) -> bool:
    return key in MESSAGES
