// Draws every <pre class="mermaid"> with the vendored Mermaid (no network).
"use strict";
mermaid.initialize({ startOnLoad: false, securityLevel: "strict", theme: "neutral", flowchart: { useMaxWidth: true } });
mermaid.run({ querySelector: "pre.mermaid" });
