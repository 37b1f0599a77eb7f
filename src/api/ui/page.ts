/**
 * The page's HTML. Everything it loads comes from meshd itself (the Content-Security-Policy says
 * so): no CDN, no external font, no inline script, since the machines that run meshd often have
 * no internet and the page must not run what an attacker could inject into a service name.
 */
export const contentSecurityPolicy =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const head = (title: string) => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>${escapeHtml(title)}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/ui/app.css">
</head>`;

/** The application shell: the script draws everything else from the API. */
export function appPage(): string {
  return `${head('meshd')}
<body>
<a class="skip" href="#main">Skip to content</a>
<header>
  <a class="brand" href="#/">meshd</a>
  <span id="where" class="muted"></span>
  <span id="live" class="live" role="status" aria-live="polite">connecting</span>
  <form method="post" action="/ui/logout"><button type="submit">Sign out</button></form>
</header>
<main id="main" tabindex="-1"><p class="muted">Loading…</p></main>
<script type="module" src="/ui/app.js"></script>
</body>
</html>
`;
}

/** Asked for off loopback without the token: a form that sets it as a cookie. */
export function loginPage(message: string): string {
  return `${head('meshd: sign in')}
<body>
<main id="main" class="login">
  <h1>meshd</h1>
  <p>This API is off loopback: give its token (<code>api.token</code>) to read the cluster.</p>
  ${message ? `<p class="error" role="alert">${escapeHtml(message)}</p>` : ''}
  <form method="post" action="/ui/login">
    <label for="token">API token</label>
    <input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
    <button type="submit">Sign in</button>
  </form>
</main>
</body>
</html>
`;
}
