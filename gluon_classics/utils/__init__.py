"""Devices and plots."""
