// The dashboard's JSON API, read with fetch: an answer that is not 2xx throws its `error`.

export async function getJSON(url) {
  const response = await fetch(url);
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}
