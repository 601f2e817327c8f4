"""The results store schema as benchfarm created it before migrations (create_all plus the additive
per-process upgrade): Alembic revision 0001. FROZEN: later changes are new revisions, never edits here."""

from __future__ import annotations

import sqlalchemy as sa

METADATA = sa.MetaData()


sa.Table(
    'api_tokens', METADATA,
    sa.Column('id', sa.String(16), primary_key=True),
    sa.Column('name', sa.String(200), nullable=False, unique=True),
    sa.Column('salt', sa.String(64), nullable=False),
    sa.Column('secret_sha256', sa.String(64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('last_used_at', sa.DateTime(), nullable=True),
    sa.Column('revoked_at', sa.DateTime(), nullable=True),
)

sa.Table(
    'artifacts', METADATA,
    sa.Column('key', sa.String(64), primary_key=True),
    sa.Column('model', sa.String(200), nullable=False),
    sa.Column('backend', sa.String(64), nullable=False),
    sa.Column('input_resolution', sa.Integer(), nullable=False),
    sa.Column('batch_size', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(16), nullable=False, default='pending'),
    sa.Column('reason', sa.Text(), nullable=False, default=''),
    sa.Column('file_sha256', sa.String(64), nullable=False, default=''),
    sa.Column('size_bytes', sa.Integer(), nullable=False, default=0),
    sa.Column('export_time_s', sa.Float(), nullable=False, default=0.0),
    sa.Column('info', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
)

sa.Table(
    'device_events', METADATA,
    sa.Column('stream_id', sa.String(32), primary_key=True),
    sa.Column('device_id', sa.String(128), nullable=False, index=True),
    sa.Column('device_class', sa.String(64), nullable=False, default='', index=True),
    sa.Column('host', sa.String(200), nullable=False, default=''),
    sa.Column('state', sa.String(16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False, default=''),
    sa.Column('at', sa.DateTime(), nullable=False, index=True),
)

sa.Table(
    'runs', METADATA,
    sa.Column('id', sa.String(32), primary_key=True),
    sa.Column('name', sa.String(200), nullable=False),
    sa.Column('trigger', sa.String(16), nullable=False, default='manual'),
    sa.Column('requested_by', sa.String(200), nullable=False, default=''),
    sa.Column('priority', sa.Integer(), nullable=False, default=5),
    sa.Column('status', sa.String(16), nullable=False, default='running', index=True),
    sa.Column('spec_yaml', sa.Text(), nullable=False),
    sa.Column('spec_source', sa.String(500), nullable=False, default=''),
    sa.Column('created_at', sa.DateTime(), nullable=False, index=True),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.Column('finalized', sa.Boolean(), nullable=False, default=False),
    sa.Column('summary', sa.JSON(), nullable=False),
    sa.Column('meta', sa.JSON(), nullable=False),
)

sa.Table(
    'jobs', METADATA,
    sa.Column('id', sa.String(32), primary_key=True),
    sa.Column('run_id', sa.String(32), sa.ForeignKey('runs.id', ondelete='CASCADE'), nullable=False, index=True),
    sa.Column('model', sa.String(200), nullable=False),
    sa.Column('backend', sa.String(64), nullable=False),
    sa.Column('device_class', sa.String(64), nullable=False, index=True),
    sa.Column('device_selector', sa.String(200), nullable=False, default=''),
    sa.Column('input_resolution', sa.Integer(), nullable=False),
    sa.Column('batch_size', sa.Integer(), nullable=False),
    sa.Column('iterations', sa.Integer(), nullable=False),
    sa.Column('warmup', sa.Integer(), nullable=False),
    sa.Column('repeat_index', sa.Integer(), nullable=False, default=0),
    sa.Column('compute_units', sa.String(16), nullable=False, default='all'),
    sa.Column('timeout_s', sa.Integer(), nullable=False, default=600),
    sa.Column('artifact_key', sa.String(64), nullable=False, default='', index=True),
    sa.Column('baseline_artifact_key', sa.String(64), nullable=False, default=''),
    sa.Column('ab_rounds', sa.Integer(), nullable=False, default=0),
    sa.Column('ab_plan', sa.JSON(), nullable=True),
    sa.Column('purpose', sa.String(16), nullable=False, default='measure'),
    sa.Column('state', sa.String(24), nullable=False, default='queued', index=True),
    sa.Column('reason', sa.Text(), nullable=False, default=''),
    sa.Column('priority', sa.Integer(), nullable=False, default=5),
    sa.Column('attempt_count', sa.Integer(), nullable=False, default=0),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('queued_at', sa.DateTime(), nullable=True),
    sa.Column('started_at', sa.DateTime(), nullable=True),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
)

sa.Table(
    'attempts', METADATA,
    sa.Column('id', sa.String(32), primary_key=True),
    sa.Column('job_id', sa.String(32), sa.ForeignKey('jobs.id', ondelete='CASCADE'), nullable=False, index=True),
    sa.Column('number', sa.Integer(), nullable=False, default=1),
    sa.Column('device_id', sa.String(128), nullable=False, default=''),
    sa.Column('host', sa.String(200), nullable=False, default=''),
    sa.Column('lease_token', sa.Integer(), nullable=False, default=0),
    sa.Column('state', sa.String(16), nullable=False, default='dispatched'),
    sa.Column('error_category', sa.String(32), nullable=False, default=''),
    sa.Column('error', sa.Text(), nullable=False, default=''),
    sa.Column('timeline', sa.JSON(), nullable=False),
    sa.Column('dispatched_at', sa.DateTime(), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=True),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
)

sa.Table(
    'profiles', METADATA,
    sa.Column('id', sa.Integer(), primary_key=True),
    sa.Column('job_id', sa.String(32), sa.ForeignKey('jobs.id', ondelete='CASCADE'), nullable=False, index=True),
    sa.Column('arm', sa.String(1), nullable=False, default='A'),
    sa.Column('artifact_key', sa.String(64), nullable=False, default=''),
    sa.Column('status', sa.String(8), nullable=False),
    sa.Column('source', sa.String(16), nullable=False),
    sa.Column('simulated', sa.Boolean(), nullable=False),
    sa.Column('iterations', sa.Integer(), nullable=False, default=0),
    sa.Column('method_mean_ms', sa.Float(), nullable=True),
    sa.Column('method_p50_ms', sa.Float(), nullable=True),
    sa.Column('wall_mean_ms', sa.Float(), nullable=True),
    sa.Column('pass_s', sa.Float(), nullable=True),
    sa.Column('etrecord', sa.Boolean(), nullable=False, default=False),
    sa.Column('etdump_path', sa.String(200), nullable=False, default=''),
    sa.Column('error_category', sa.String(32), nullable=False, default=''),
    sa.Column('error', sa.Text(), nullable=False, default=''),
    sa.UniqueConstraint('job_id', 'arm', name='uq_profiles_job_arm'),
)

sa.Table(
    'profile_operators', METADATA,
    sa.Column('id', sa.Integer(), primary_key=True),
    sa.Column('profile_id', sa.Integer(), sa.ForeignKey('profiles.id', ondelete='CASCADE'), nullable=False, index=True),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(300), nullable=False),
    sa.Column('kind', sa.String(300), nullable=False),
    sa.Column('p10_ms', sa.Float(), nullable=True),
    sa.Column('p50_ms', sa.Float(), nullable=False),
    sa.Column('p90_ms', sa.Float(), nullable=True),
    sa.Column('mean_ms', sa.Float(), nullable=False),
    sa.Column('share', sa.Float(), nullable=False),
    sa.Column('delegated', sa.Boolean(), nullable=False),
    sa.Column('backend', sa.String(64), nullable=True),
    sa.Column('module_path', sa.String(500), nullable=True),
    sa.Column('debug_handle', sa.Integer(), nullable=True),
)

sa.Table(
    'results', METADATA,
    sa.Column('id', sa.Integer(), primary_key=True),
    sa.Column('job_id', sa.String(32), sa.ForeignKey('jobs.id', ondelete='CASCADE'), nullable=False),
    sa.Column('attempt_id', sa.String(32), sa.ForeignKey('attempts.id', ondelete='CASCADE'), nullable=False),
    sa.Column('simulated', sa.Boolean(), nullable=False),
    sa.Column('device_id', sa.String(128), nullable=False),
    sa.Column('device_model', sa.String(64), nullable=False),
    sa.Column('os_version', sa.String(64), nullable=False),
    sa.Column('load_time_ms', sa.Float(), nullable=False),
    sa.Column('median_ms', sa.Float(), nullable=False),
    sa.Column('p10_ms', sa.Float(), nullable=False),
    sa.Column('p90_ms', sa.Float(), nullable=False),
    sa.Column('mean_ms', sa.Float(), nullable=False),
    sa.Column('peak_memory_bytes', sa.Integer(), nullable=False),
    sa.Column('energy_mj', sa.Float(), nullable=True),
    sa.Column('document', sa.JSON(), nullable=False),
    sa.Column('ab', sa.JSON(), nullable=True),
    sa.Column('recorded_at', sa.DateTime(), nullable=False),
    sa.UniqueConstraint('job_id', name='uq_results_job'),
)
