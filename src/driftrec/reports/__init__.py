"""Interest reports: self-contained HTML (plotly, its JavaScript inlined) and PNG charts of how
users' interests moved, what they are served now and why, and how a run scored."""

from driftrec.reports.document import Report
from driftrec.reports.user import UserStory, user_story

__all__ = ["Report", "UserStory", "user_story"]
