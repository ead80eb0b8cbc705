// Example SPA for Shroud's token handler, using the OAuth Agent API exactly as an SPA team would.
// No framework, no build step, no token ever in JavaScript: only the CSRF token is kept, in memory.
(function () {
  'use strict';

  const config = Object.assign(
    { agentBase: '/oauth-agent', apiBase: '/api', csrfHeader: 'x-shroud-csrf' },
    window.SHROUD_CONFIG || {}
  );
  let csrf = null;

  const $ = (id) => document.getElementById(id);
  const show = (id, visible) => { $(id).hidden = !visible; };

  function setError(message) {
    $('error').textContent = message || '';
  }

  // Every call carries the cookies; writes also carry the CSRF header once it is known.
  async function call(url, method, body) {
    const headers = { accept: 'application/json' };
    if (csrf) headers[config.csrfHeader] = csrf;
    if (body !== undefined) headers['content-type'] = 'application/json';
    return fetch(url, {
      method,
      headers,
      credentials: 'include',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  }

  async function agent(method, path, body) {
    const response = await call(config.agentBase + path, method, body);
    const text = await response.text();
    const data = text ? JSON.parse(text) : {};
    if (!response.ok) {
      const error = new Error(data.message || ('HTTP ' + response.status));
      error.status = response.status;
      error.code = data.code;
      throw error;
    }
    return data;
  }

  function render(loggedIn) {
    $('status').textContent = loggedIn ? 'Logged in' : 'Logged out';
    show('login', !loggedIn);
    show('call-api', loggedIn);
    show('logout', loggedIn);
    if (!loggedIn) {
      $('user').textContent = '—';
      $('api').textContent = '—';
    }
  }

  async function loadUser() {
    const info = await agent('GET', '/userInfo');
    $('user').textContent = JSON.stringify(info, null, 2);
    $('status').textContent = 'Logged in as ' + (info.name || info.sub);
  }

  // On every page load: let the agent finish a login callback, or report the session.
  async function pageLoad() {
    const data = await agent('POST', '/login/end', { pageUrl: location.href });
    if (data.handled) {
      // Remove code and state from the address bar: the callback cannot be replayed.
      history.replaceState({}, document.title, location.pathname.replace(/\/callback$/, '/'));
    }
    csrf = data.csrf || null;
    render(Boolean(data.isLoggedIn));
    if (data.isLoggedIn) await loadUser();
  }

  async function refresh() {
    await agent('POST', '/refresh');
  }

  // An API call; on 401, refresh the access token once and retry.
  async function callApi() {
    const url = config.apiBase + '/data';
    let response = await call(url, 'GET');
    if (response.status === 401) {
      try {
        await refresh();
      } catch (error) {
        if (error.status === 401) {
          render(false);
          throw new Error('Your session has expired: please log in again.');
        }
        throw error;
      }
      response = await call(url, 'GET');
    }
    const text = await response.text();
    if (!response.ok) throw new Error('API answered ' + response.status + ': ' + text);
    $('api').textContent = JSON.stringify(JSON.parse(text), null, 2);
  }

  async function login() {
    const data = await agent('POST', '/login/start');
    location.assign(data.authorizationRequestUrl);
  }

  async function logout() {
    const data = await agent('POST', '/logout');
    csrf = null;
    render(false);
    location.assign(data.url);
  }

  function guarded(action) {
    return async () => {
      setError('');
      try {
        await action();
      } catch (error) {
        setError(error.message);
      }
    };
  }

  $('login').addEventListener('click', guarded(login));
  $('call-api').addEventListener('click', guarded(callApi));
  $('logout').addEventListener('click', guarded(logout));
  guarded(pageLoad)();
})();
