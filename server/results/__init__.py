"""Results for campaign leads: progress, answers by area, map layers, follow-ups, data health, exports."""
