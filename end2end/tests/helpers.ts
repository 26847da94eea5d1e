import { expect, Page } from '@playwright/test';

// Created by run.sh with `behalf create-member` before the suite starts.
export const PASSWORD = process.env.BEHALF_E2E_PASSWORD ?? 'e2e-password-123';
export const ADMIN = { email: 'ada@e2e.test', name: 'Ada Admin' };
export const MEMBER = { email: 'ann@e2e.test', name: 'Ann Lee' };

/** Waits until the page has hydrated (the app marks <body data-hydrated>). */
export async function hydrated(page: Page) {
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
}

export async function signIn(page: Page, email: string, password = PASSWORD) {
  await page.goto('/login');
  await hydrated(page);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

/** Signs in and waits until the app shows the signed-in header. */
export async function signedIn(page: Page, email: string, password = PASSWORD) {
  await signIn(page, email, password);
  await expect(page.getByRole('button', { name: 'Sign out' })).toBeVisible();
}
