import { expect, test } from '@playwright/test';
import { hydrated, MEMBER, ADMIN, PASSWORD, signIn } from './helpers';

test('a member signs in, sees their name, stays signed in across a reload, and signs out', async ({ page }) => {
  await signIn(page, MEMBER.email);
  await expect(page).toHaveURL(/\/$/);
  const header = page.getByRole('banner');
  await expect(header.getByText(MEMBER.name)).toBeVisible();
  await expect(page.getByRole('heading', { name: 'My account' })).toBeVisible();
  await expect(page).toHaveTitle(/^My account/);

  await page.reload();
  await hydrated(page);
  await expect(header.getByText(MEMBER.name)).toBeVisible();
  await expect(page.getByText(MEMBER.email)).toBeVisible();

  await header.getByRole('button', { name: 'Sign out' }).click();
  await expect(page).toHaveURL(/\/login$/);
  await expect(page.getByRole('button', { name: 'Sign in' })).toBeVisible();
  await expect(page.getByRole('banner').getByText(MEMBER.name)).toHaveCount(0);

  // The old session is gone for good: the account page sends us to sign in.
  await page.goto('/');
  await expect(page).toHaveURL(/\/login$/);
});

test('a protected page sends a stranger to sign in, and back afterwards', async ({ page }) => {
  await page.goto('/?tab=details');
  await expect(page).toHaveURL(/\/login\?next=/);
  await expect(page.getByRole('heading', { name: 'Sign in' })).toBeVisible();
  await hydrated(page);
  await page.getByLabel('Email').fill(ADMIN.email);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page).toHaveURL(/\/\?tab=details$/);
  await expect(page.getByRole('banner').getByText(ADMIN.name)).toBeVisible();
  await expect(page.getByRole('banner').getByText('Super user')).toBeVisible();
});

test('a wrong password shows a clear message and signs nobody in', async ({ page }) => {
  await signIn(page, MEMBER.email, 'not-the-password');
  const alert = page.getByRole('alert');
  await expect(alert).toHaveText('Email or password is incorrect.');
  await expect(page).toHaveURL(/\/login/);
  await expect(page.getByRole('banner').getByText(MEMBER.name)).toHaveCount(0);

  // An unknown email gets exactly the same message.
  await page.getByLabel('Email').fill('nobody@e2e.test');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('alert')).toHaveText('Email or password is incorrect.');
});

test('an empty email is pointed out next to its field', async ({ page }) => {
  await page.goto('/login');
  await hydrated(page);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByText('Enter an email address.')).toBeVisible();
  await expect(page.getByLabel('Email')).toHaveAttribute('aria-invalid', 'true');
});

test.describe('without JavaScript', () => {
  test.use({ javaScriptEnabled: false });

  test('signing in still works (the form posts natively)', async ({ page }) => {
    await page.goto('/login');
    await page.getByLabel('Email').fill(MEMBER.email);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page).toHaveURL(/\/$/);
    await expect(page.getByRole('heading', { name: 'My account' })).toBeVisible();
    await expect(page.getByRole('banner').getByText(MEMBER.name)).toBeVisible();
  });
});

test('a member\'s first pages load only the main WebAssembly module, and their forms work hydrated', async ({ page }) => {
  // Every WebAssembly file the browser asks for: the sign-in page and My account must
  // need no lazily loaded chunk (what they download is what `make wasm-budget` counts).
  const wasm: string[] = [];
  page.on('request', (request) => {
    const path = new URL(request.url()).pathname;
    if (path.endsWith('.wasm')) wasm.push(path);
  });
  await signIn(page, 'pia@e2e.test');
  await expect(page).toHaveURL(/\/$/);
  await hydrated(page);
  const header = page.getByRole('banner');
  await expect(header.getByText('Pia Park')).toBeVisible();

  // The profile form builds its arguments itself (no ActionForm): an empty name is
  // pointed out, a new one is saved and shown after the page reloads itself.
  const name = page.getByLabel('Display name');
  await name.fill('');
  await page.getByRole('button', { name: 'Save name' }).click();
  await expect(page.getByText('Enter a name.')).toBeVisible();
  await expect(header.getByText('Pia Park')).toBeVisible();
  await name.fill('Pia Parker');
  await page.getByRole('button', { name: 'Save name' }).click();
  await expect(header.getByText('Pia Parker')).toBeVisible();
  await hydrated(page);

  expect(wasm.length).toBeGreaterThan(0);
  expect(new Set(wasm)).toEqual(new Set(['/pkg/behalf.wasm']));
});
