"""The line mixture with a population model for the true X (Kelly 2007).

:class:`_LinePopulationModel` extends the projected line mixture of
:mod:`skhier._line` (Hogg, Bovy & Lang 2010) with a Gaussian-mixture
population for the points' true X, which removes the attenuation of the
slopes that X errors cause: given a population component, the observed
(X_i, y_i) are jointly Gaussian, so the true X stay integrated out in closed
form. :class:`~skhier.RobustLineMixture` uses it with ``x_model="population"``
(the default when X errors are given).

References
----------
Kelly, B. C. (2007), "Some aspects of measurement error in linear regression
of astronomical data", ApJ 665, 1489.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, log_expit, log_ndtr, logsumexp
from scipy.stats import truncnorm

from . import _line
from ._line import _gauss_or_limit, _LineModel, _outlier_loglik
from ._math import LOG2PI, categorical, diag_stack, psd_sqrt, row_chunks, solve_spd

__all__ = ["_LinePopulationModel"]


class _LinePopulationModel(_LineModel):
    """The line mixture with a Gaussian-mixture population for the true X.

    The true X of every point is drawn from ``sum_k w_k N(m_k, T_k)``; given
    component k, the observed (X_i, y_i) are jointly Gaussian (Kelly 2007,
    section 4), so each point's likelihood is a closed-form sum over k:
    ``p(X_i | k) p(y_i | X_i, k)`` with

        X_i | k         ~ N(m_k, S_ik),      S_ik = T_k + C_x,i
        y_i | X_i, k    ~ N(b + c.m_k + g_ik' S_ik^-1 (X_i - m_k),
                            c' T_k c + V + y_err_i^2 - g_ik' S_ik^-1 g_ik)
        g_ik            = T_k c + C_xy,i.

    Outliers keep the same X population and take y from the background.
    Extra coordinates (after those of :class:`_LineModel`): the component
    means (K x d), each component's Cholesky factor (log diagonal, then the
    lower off-diagonal), and K - 1 additive log-ratios of the weights.
    """

    def __init__(self, *args, n_components=1, **kwargs):
        super().__init__(*args, **kwargs)
        d, K = self.d, n_components
        self.K = K
        self.n_line = len(self.param_names)
        names = [f"x_mean[{k},{j}]" for k in range(K) for j in range(d)]
        tri = [(i, j) for i in range(d) for j in range(i)]
        self.tri = tri
        for k in range(K):
            names += [f"x_log_chol[{k},{j}]" for j in range(d)]
            names += [f"x_chol[{k},{i},{j}]" for i, j in tri]
        names += [f"x_logratio[{k}]" for k in range(1, K)]
        self.param_names = self.param_names + names

    def _unpack_pop(self, theta):
        """Component means (S,K,d), covariances (S,K,d,d), log weights (S,K)."""
        d, K = self.d, self.K
        S = theta.shape[0]
        k0 = self.n_line
        m = theta[:, k0:k0 + K * d].reshape(S, K, d)
        k0 += K * d
        nl = d + len(self.tri)
        raw = theta[:, k0:k0 + K * nl].reshape(S, K, nl)
        k0 += K * nl
        L = np.zeros((S, K, d, d))
        idx = np.arange(d)
        L[:, :, idx, idx] = np.exp(raw[:, :, :d])
        for q, (i, j) in enumerate(self.tri):
            L[:, :, i, j] = raw[:, :, d + q]
        T = L @ np.swapaxes(L, -1, -2)
        z = np.concatenate([np.zeros((S, 1)), theta[:, k0:k0 + K - 1]], axis=1)
        if K > 1:
            z = z - z.max(axis=1, keepdims=True)
            z = z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))
        logw = z
        return m, T, logw, raw

    def log_prior(self, theta):
        lp = super().log_prior(theta)
        m, _, logw, raw = self._unpack_pop(theta)
        d = self.d
        # Component means N(0, 2^2) per coordinate; Cholesky diagonal
        # Half-Cauchy(0, 1) (with the log Jacobian), off-diagonal N(0, 1);
        # weights Dirichlet(1, ..., 1) (Jacobian of the log-ratios: prod w_k).
        lp = lp - 0.125 * np.sum(m**2, axis=(1, 2))
        ld = raw[:, :, :d]
        lp = lp + np.sum(ld - np.log1p(np.exp(2.0 * ld)), axis=(1, 2))
        lp = lp - 0.5 * np.sum(raw[:, :, d:] ** 2, axis=(1, 2))
        return lp + np.sum(logw, axis=1)

    def _component(self, theta, k, rows, m, T, extra=False):
        """Terms of component k for the points ``rows``: log p(X_i | k) and
        the mean and variance of y_i | X_i, k (and, with ``extra``, what the
        latent X needs)."""
        coef, b, log_s, _ = self._unpack(theta)
        X = self.X[rows]
        n, d = X.shape
        mk, Tk = m[:, k], T[:, k]                                  # (S,d), (S,d,d)
        if d == 1 and not extra:
            # One feature: scalar algebra on (draws, points) tables.
            c, t, mu = coef[:, :1], Tk[:, 0], mk[:, :1]
            Sv = t if self.X_var_diag is None else t + self.X_var_diag[rows, 0]
            g = t * c if self.Xy_cov is None else t * c + self.Xy_cov[rows, 0]
            r = X[:, 0] - mu
            u = r / Sv
            lx = -0.5 * (r * u + np.log(Sv) + LOG2PI)
            mean_y = (b[:, None] + c * mu) + g * u
            var_y = (c * c * t + self._scatter_var(coef, log_s)[:, None]) - g * g / Sv
            if self.y_var is not None:
                var_y = var_y + self.y_var[rows]
            return lx, mean_y, var_y
        Smat = np.broadcast_to(Tk[:, None], (len(mk), n, d, d))
        if self.X_var_diag is not None:
            Smat = Smat + diag_stack(self.X_var_diag[rows])[None]
        elif self.X_cov is not None:
            Smat = Smat + self.X_cov[rows][None]
        Tc = np.einsum("sij,sj->si", Tk, coef)                     # (S,d)
        g = np.broadcast_to(Tc[:, None, :], (len(mk), n, d))
        if self.Xy_cov is not None:
            g = g + self.Xy_cov[rows][None]
        r = X[None] - mk[:, None, :]
        B = [r[..., None], g[..., None]]
        if extra:
            B.append(np.broadcast_to(Tk[:, None], Smat.shape))
        sol, logdet = solve_spd(Smat, np.concatenate(B, axis=-1))
        u, h = sol[..., 0], sol[..., 1]
        lx = -0.5 * (np.sum(r * u, -1) + logdet + d * LOG2PI)
        mean_y = (b + np.sum(coef * mk, 1))[:, None] + np.sum(g * u, -1)
        var_y = (np.sum(coef * Tc, 1) + self._scatter_var(coef, log_s))[:, None] - np.sum(g * h, -1)
        if self.y_var is not None:
            var_y = var_y + self.y_var[rows][None]
        if not extra:
            return lx, mean_y, var_y
        SinvT = sol[..., 2:]                                       # S^-1 T_k: (S,n,d,d)
        mean_x = mk[:, None, :] + np.einsum("snji,snj->sni", SinvT, r)   # T S^-1 r
        cov_x = Tk[:, None] - np.einsum("sij,snjk->snik", Tk, SinvT)
        gain = Tc[:, None, :] - np.einsum("sij,snj->sni", Tk, h)   # Cov(xi, y | X): T(c - h)
        return lx, mean_y, var_y, mean_x, cov_x, gain

    def point_logliks(self, theta, rows=slice(None), conditional=False):
        """Joint log-likelihoods of (X_i, y_i) as inlier and outlier (with the
        mixture weights), or of y_i given X_i when ``conditional``."""
        coef, b, log_s, out = self._unpack(theta)
        m, T, logw, _ = self._unpack_pop(theta)
        y = self.y[rows]
        limit = None if self.limit is None else self.limit[rows]
        lxs, lins = [], []
        for k in range(self.K):
            lx, mean_y, var_y = self._component(theta, k, rows, m, T)
            if self.K > 1:
                lx = logw[:, k, None] + lx
            ll = _gauss_or_limit(y[None], mean_y, var_y, limit)
            if self.scatter is None or self.Xy_cov is not None:
                # Without scatter (or with x-y error covariances) the variance
                # can reach zero; elsewhere it is at least the scatter's.
                ll = np.where(var_y > 0, ll, -np.inf)
            lxs.append(lx)
            lins.append(lx + ll)
        if self.K == 1:
            lx_tot, ll_in = lxs[0], lins[0]
        else:
            lx_tot = logsumexp(np.stack(lxs), axis=0)
            ll_in = logsumexp(np.stack(lins), axis=0)
        if conditional:
            ll_in = ll_in - lx_tot
        if out is None:
            return ll_in, None
        z, yb, log_sb = out
        y_var = None if self.y_var is None else self.y_var[rows]
        ll_out = _outlier_loglik(yb, np.exp(log_sb), y, y_var, limit)
        if not conditional:
            ll_out = ll_out + lx_tot
        return ll_in + log_expit(-z)[:, None], ll_out + log_expit(z)[:, None]

    def initial_point(self):
        n, d = self.X.shape
        Cx = np.zeros((d, d))
        if self.X_var_diag is not None:
            Cx = np.diag(self.X_var_diag.mean(axis=0))
        elif self.X_cov is not None:
            Cx = self.X_cov.mean(axis=0)
        Sxx = np.atleast_2d(np.cov(self.X, rowvar=False))
        # Population covariance: observed minus mean error covariance, kept
        # positive definite.
        w, V = np.linalg.eigh(Sxx - Cx)
        Tx = (V * np.maximum(w, 0.05 * np.max(np.diag(Sxx)))) @ V.T
        Sxy = np.array([np.cov(self.X[:, j], self.y)[0, 1] for j in range(d)])
        if self.Xy_cov is not None:
            Sxy = Sxy - self.Xy_cov.mean(axis=0)
        coef = np.linalg.solve(Tx, Sxy)                            # de-attenuated slope
        b = self.y.mean() - self.X.mean(axis=0) @ coef
        theta = list(coef) + [b] + self._nuisance_start(self.y - self.X @ coef - b)
        K = self.K
        means = np.tile(self.X.mean(axis=0), (K, 1))
        if K > 1:
            means[:, 0] = np.quantile(self.X[:, 0], (np.arange(K) + 0.5) / K)
        L = np.linalg.cholesky(Tx / K if K > 1 else Tx)
        theta += list(means.ravel())
        for _ in range(K):
            theta += list(np.log(np.diag(L))) + [L[i, j] for i, j in self.tri]
        theta += [0.0] * (K - 1)
        return np.asarray(theta, dtype=np.float64)

    def constrain(self, theta):
        theta = np.atleast_2d(theta)
        params = super().constrain(theta)
        m, T, logw, _ = self._unpack_pop(theta)
        params["x_weight"] = np.exp(logw)
        params["x_mean"] = self.x_loc + self.x_scale * m
        params["x_cov"] = T * (self.x_scale[:, None] * self.x_scale[None, :])
        return params

    def unconstrain(self, params):
        line = super().unconstrain(params)
        S = line.shape[0]
        m = (params["x_mean"] - self.x_loc) / self.x_scale
        T = params["x_cov"] / (self.x_scale[:, None] * self.x_scale[None, :])
        L = np.linalg.cholesky(T)
        d = self.d
        idx = np.arange(d)
        raw = [np.log(L[:, :, idx, idx])] + [L[:, :, i, j][..., None] for i, j in self.tri]
        raw = np.concatenate(raw, axis=-1).reshape(S, -1)
        logw = np.log(params["x_weight"])
        return np.hstack([line, m.reshape(S, -1), raw, logw[:, 1:] - logw[:, :1]])

    def _latent_terms(self, theta, rows):
        """Per component and indicator: log posterior weight (S,n,K,2),
        latent-X means (S,n,K,2,d) and covariances (S,n,K,2,d,d), and the
        pieces a censored inlier's draw needs."""
        coef, b, log_s, out = self._unpack(theta)
        m, T, logw, _ = self._unpack_pop(theta)
        y = self.y[rows]
        limit = None if self.limit is None else self.limit[rows]
        y_var = None if self.y_var is None else self.y_var[rows]
        ll_out = None
        if out is not None:
            z, yb, log_sb = out
            ll_out = log_expit(z)[:, None] + _outlier_loglik(yb, np.exp(log_sb), y, y_var, limit)
        logp, comps = [], []
        for k in range(self.K):
            lx, mean_y, var_y, mean_x, cov_x, gain = self._component(theta, k, rows, m, T, True)
            base = logw[:, k, None] + lx
            l_in = base + _gauss_or_limit(y[None], mean_y, var_y, limit)
            if out is not None:
                l_in = l_in + log_expit(-z)[:, None]
            l_o = base + ll_out if out is not None else np.full_like(base, -np.inf)
            logp.append(np.stack([l_in, l_o], -1))
            comps.append((mean_y, var_y, mean_x, cov_x, gain))
        logp = np.stack(logp, 2)
        top = np.max(logp, axis=(2, 3), keepdims=True)
        logp = logp - (top + np.log(np.sum(np.exp(logp - top), axis=(2, 3), keepdims=True)))
        return logp, comps, y, limit

    def latent_x(self, theta, rows, rng=None):
        """Draws (rng given) or posterior means of each point's true X, and
        the outlier indicators of the draws: standardised units."""
        logp, comps, y, limit = self._latent_terms(theta, rows)
        S, n = logp.shape[:2]
        if rng is None:
            total = 0.0
            p = np.exp(logp)
            for k, (mean_y, var_y, mean_x, _, gain) in enumerate(comps):
                y_in = np.broadcast_to(y[None], mean_y.shape)
                if limit is not None:
                    sd = np.sqrt(var_y)
                    a = (y[None] - mean_y) / sd
                    shift = np.exp(-0.5 * a**2 - 0.5 * LOG2PI - log_ndtr(limit * a))
                    y_in = np.where(limit != 0, mean_y - limit * sd * shift, y_in)
                x_in = mean_x + gain * ((y_in - mean_y) / var_y)[..., None]
                total = total + p[..., k, 0, None] * x_in + p[..., k, 1, None] * mean_x
            return total, None
        flat = logp.reshape(S, n, -1)
        pick = categorical(np.exp(flat), rng)
        k_idx, is_out = pick // 2, pick % 2 == 1
        d = self.d
        xs = np.empty((S, n, d))
        for k, (mean_y, var_y, mean_x, cov_x, gain) in enumerate(comps):
            sel = k_idx == k
            if not np.any(sel):
                continue
            y_in = np.broadcast_to(y[None], mean_y.shape)
            if limit is not None and np.any(limit):
                # A limit's measured value is drawn from its truncated
                # conditional; the true X then follows given that value.
                sd = np.sqrt(var_y)
                a = (y[None] - mean_y) / sd
                lo = np.where(limit < 0, a, -np.inf)
                hi = np.where(limit > 0, a, np.inf)
                lo, hi = np.broadcast_to(lo, a.shape), np.broadcast_to(hi, a.shape)
                cens = np.broadcast_to(limit != 0, a.shape)
                y_in = np.array(y_in)
                y_in[cens] = mean_y[cens] + sd[cens] * truncnorm.rvs(
                    lo[cens], hi[cens], random_state=rng)
            x_in = mean_x + gain * ((y_in - mean_y) / var_y)[..., None]
            cov_in = cov_x - gain[..., :, None] * gain[..., None, :] / var_y[..., None, None]
            mu = np.where(is_out[..., None], mean_x, x_in)
            cov = np.where(is_out[..., None, None], cov_x, cov_in)
            draw = mu + np.einsum("snij,snj->sni", psd_sqrt(cov), rng.standard_normal((S, n, d)))
            xs[sel] = draw[sel]
        return xs, is_out

    def replicate(self, theta, rng):
        """Replicated (X, y) measurements (standardised units) for the draws ``theta``.

        The generative model run forward: each point's true X from the
        population mixture, its true y from the trend with the scatter (or
        from the background if drawn as an outlier), then both measured
        with the point's error covariance (x-y correlations included).
        """
        coef, b, log_s, out = self._unpack(theta)
        m, T, logw, _ = self._unpack_pop(theta)
        S, (n, d) = len(theta), self.X.shape
        cum = np.cumsum(np.exp(logw), axis=1)
        k = np.minimum((rng.uniform(size=(S, n, 1)) > cum[:, None, :]).sum(-1), self.K - 1)
        L = np.linalg.cholesky(T)                                  # (S, K, d, d)
        idx = np.arange(S)[:, None]
        x = m[idx, k] + np.einsum("snij,snj->sni", L[idx, k], rng.standard_normal((S, n, d)))
        y = np.sum(coef[:, None, :] * x, -1) + b[:, None]
        y = y + np.sqrt(self._scatter_var(coef, log_s))[:, None] * rng.standard_normal((S, n))
        if out is not None:
            z, yb, log_sb = out
            is_out = rng.uniform(size=(S, n)) < expit(z)[:, None]
            bg = yb[:, None] + np.exp(log_sb)[:, None] * rng.standard_normal((S, n))
            y = np.where(is_out, bg, y)
        # Measurement errors: joint covariance of (X_i, y_i), per point.
        C = np.zeros((n, d + 1, d + 1))
        if self.X_cov is not None:
            C[:, :d, :d] = self.X_cov
        elif self.X_var_diag is not None:
            C[:, :d, :d] = diag_stack(self.X_var_diag)
        if self.Xy_cov is not None:
            C[:, :d, d] = C[:, d, :d] = self.Xy_cov
        if self.y_var is not None:
            C[:, d, d] = self.y_var
        noise = np.einsum("nij,snj->sni", psd_sqrt(C), rng.standard_normal((S, n, d + 1)))
        return {"y": y + noise[..., d], "X": x + noise[..., :d]}

    def draw_latents(self, params, rng):
        theta = self.unconstrain(params)
        S, n = theta.shape[0], len(self.y)
        xs = np.empty((S, n, self.d))
        outl = np.zeros((S, n), dtype=bool)
        for rows in row_chunks(n, S * self.K * 2 * self.d, _line._ROW_CHUNK_CELLS):
            xs[:, rows], is_out = self.latent_x(theta, rows, rng)
            outl[:, rows] = is_out
        return {"outlier": outl, "x_true": self.x_loc + self.x_scale * xs}
