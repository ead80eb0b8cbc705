// Where the SPA finds Shroud. The same-origin demo needs nothing else; an SPA on another origin of the
// same site sets absolute URLs here (for example agentBase: "http://127.0.0.1:8080/oauth-agent").
window.SHROUD_CONFIG = window.SHROUD_CONFIG || {};
