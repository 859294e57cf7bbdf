"""The command line's table headers and error lines in the user's language: English, or
Chinese when the locale says so.

The language is the first of `VOICELOOP_LANG`, `LC_ALL`, `LC_MESSAGES`, `LANG` that is set (as
gettext looks them up, with our own variable first so a server's logs can stay English while a
person's terminal does not): "zh", "zh_CN.UTF-8", "zh-TW" mean Chinese, anything else English.

Words are keyed by their English form, so a call site reads as it always did (`tr("size")`) and
a word missing here simply stays English. Error messages are built from values (file names,
limits), so they are matched by pattern; one that no pattern knows keeps its English text
after the translated "error:".
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

LANGUAGE_VARIABLES = ("VOICELOOP_LANG", "LC_ALL", "LC_MESSAGES", "LANG")

ZH: dict[str, str] = {
    "error": "错误",
    # voiceloop demo
    "said": "说的话",
    "heard": "听到的",
    "reply (as played)": "回复（已播放部分）",
    "v2v ms": "语音到语音 ms",
    "endpoint": "断句",
    "asr": "识别",
    "llm ttft": "LLM 首词元",
    "tts 1st": "TTS 首段音频",
    # voiceloop models
    "name": "名称",
    "cached": "已缓存",
    "size": "大小",
    "used": "使用中",
    "what": "说明",
    # voiceloop voices
    "voice": "声音",
    "gender": "性别",
    "locale": "语言区域",
    "personality": "风格",
    # voiceloop bench
    "backend": "后端",
    "v2v median": "语音到语音中位数",
    "v2v p90": "语音到语音 p90",
    "TTFT median": "首词元中位数",
    "TTFT p90": "首词元 p90",
    "tokens/s": "词元/秒",
    "errors": "错误数",
    # voiceloop devices
    "host API": "主机 API",
    "in": "输入",
    "out": "输出",
    "rate": "采样率",
    "default": "默认",
    # voiceloop doctor
    "check": "检查项",
    "detail": "详情",
    # error lines, whole
    "interrupted": "已中断",
    "the voice produced no audio": "该声音没有生成任何音频",
    "several SRT files cannot share stdout: give --out DIR": "多个 SRT 文件不能共用标准输出：请用 --out DIR",
}

# (English pattern, Chinese template with {1}, {2}... for the groups): the common error lines.
ZH_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), template)
    for pattern, template in (
        (
            r"^config file not found: (.+) \(nor a profile named (.+)\)$",
            "找不到配置文件：{1}（也没有名为 {2} 的配置）",
        ),
        (r"^(.+): no such file$", "{1}：文件不存在"),
        (r"^no audio files found in (.+)$", "在 {1} 中没有找到音频文件"),
        (r"^(--[\w-]+ \S+): choose one of (.+)$", "{1}：请从 {2} 中选择"),
        (r"^--format must be txt, json or srt \(got (.+)\)$", "--format 只能是 txt、json 或 srt（收到 {1}）"),
        (
            r"^no audio output device: (.+)\. Write the speech to a file instead: (.+)$",
            "没有音频输出设备：{1}。请改为写入文件：{2}",
        ),
        (r"^cannot listen on (\S+): (.+)$", "无法监听 {1}：{2}"),
    )
)


def language(environ: Mapping[str, str] | None = None) -> str:
    """ "zh" or "en", from the first of LANGUAGE_VARIABLES that is set and not empty."""
    environ = os.environ if environ is None else environ
    for name in LANGUAGE_VARIABLES:
        value = environ.get(name, "").strip()
        if value:
            return "zh" if value.lower().replace("-", "_").split("_")[0].split(".")[0] == "zh" else "en"
    return "en"


def tr(text: str, environ: Mapping[str, str] | None = None) -> str:
    """`text` (an English word or line) in the user's language, or as it is if none is known."""
    if language(environ) != "zh":
        return text
    if text in ZH:
        return ZH[text]
    for pattern, template in ZH_PATTERNS:
        match = pattern.match(text)
        if match is not None:
            return template.format(None, *match.groups())
    return text


def error_prefix(environ: Mapping[str, str] | None = None) -> str:
    """The markup that starts an error line: "error:" or "错误：" in bold red."""
    return "[bold red]错误：[/]" if language(environ) == "zh" else "[bold red]error:[/]"


def error_line(message: str, environ: Mapping[str, str] | None = None) -> str:
    """A whole error line, as `fail()` prints it (rich markup)."""
    separator = "" if language(environ) == "zh" else " "  # "错误：" ends in its own full-width colon
    return f"{error_prefix(environ)}{separator}{tr(message, environ)}"
